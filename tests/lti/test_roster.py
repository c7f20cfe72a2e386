"""NRPS roster sync: service token by signed assertion, paged members, departures."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Request, Response

from plugin.devplatform.signer import DevPlatform
from plugin.lti.registrations import PlatformInput, add_platform
from plugin.lti.roster import NRPS_CLAIM
from plugin.lti.tool_keys import ensure_signing_key, published_jwks
from plugin.models import CourseMembership, OutboxJob, User
from tests.conftest import serving
from tests.lti.conftest import Browser, KeysetServer

MEMBER = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


@dataclass
class PlatformServices:
    """The platform's OAuth token endpoint and NRPS endpoint."""

    port: int
    client_id: str = "client-1"
    tool_jwks: dict[str, Any] = field(default_factory=dict)
    members: list[dict[str, Any]] = field(default_factory=list)
    refuse_tokens: bool = False
    token_requests: int = 0
    #: Members per resource link (NRPS ``rlid``); the course roster otherwise.
    link_members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rlids: list[str | None] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def services() -> Iterator[PlatformServices]:
    holder: dict[str, PlatformServices] = {}

    @Request.application
    def serve(request: Request) -> Response:
        svc = holder["s"]
        if request.path == "/token":
            svc.token_requests += 1
            form = parse_qs(request.get_data(as_text=True))
            assertion = form["client_assertion"][0]
            kid = jwt.get_unverified_header(assertion)["kid"]
            jwk = next((k for k in svc.tool_jwks["keys"] if k["kid"] == kid), None)
            if svc.refuse_tokens or jwk is None:
                return Response('{"error":"invalid_client"}', status=401)
            claims = jwt.decode(
                assertion, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=f"{svc.origin}/token"
            )
            assert claims["iss"] == claims["sub"] == svc.client_id
            assert form["scope"][0] == SCOPE
            return Response(
                json.dumps({"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}),
                mimetype="application/json",
            )
        if request.path == "/nrps":
            if request.headers.get("Authorization") != "Bearer tok-1":
                return Response("unauthorized", status=401)
            page = int(request.args.get("page", "1"))
            rlid = request.args.get("rlid")
            svc.rlids.append(rlid)
            members = svc.link_members[rlid] if rlid is not None else svc.members
            chunk = members[(page - 1) * 2 : page * 2]
            headers = {}
            if page * 2 < len(members):
                more = f"&rlid={rlid}" if rlid is not None else ""
                headers["Link"] = f'<{svc.origin}/nrps?page={page + 1}{more}>; rel="next"'
            body = {"id": f"{svc.origin}/nrps", "context": {"id": "course-1"}, "members": chunk}
            return Response(
                json.dumps(body),
                headers=headers,
                mimetype="application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
            )
        return Response("not found", status=404)

    with serving(serve) as port:
        holder["s"] = PlatformServices(port=port)
        yield holder["s"]


@pytest.fixture
def nrps_lms(
    app: Flask, session: Session, services: PlatformServices, keyset_server: KeysetServer
) -> DevPlatform:
    lms = DevPlatform(
        issuer="https://canvas.example.edu", client_id="client-1", deployment_id="deployment-1"
    )
    keyset_server.keysets["canvas"] = lms.jwks()
    add_platform(
        session,
        PlatformInput(
            issuer=lms.issuer,
            client_id=lms.client_id,
            auth_login_url="https://canvas.example.edu/auth",
            auth_token_url=f"{services.origin}/token",
            key_set_url=keyset_server.url("canvas"),
            deployment_ids=(lms.deployment_id,),
        ),
        allow_http_loopback=True,
    )
    ensure_signing_key(session)
    session.commit()
    services.tool_jwks = published_jwks(session)
    services.members = [
        {"user_id": "user-1", "status": "Active", "roles": [f"{MEMBER}Learner"]},
        {"user_id": "user-2", "status": "Active", "name": "Noor N", "roles": [f"{MEMBER}Learner"]},
        {"user_id": "prof-1", "status": "Active", "roles": [f"{MEMBER}Instructor"]},
        {"user_id": "user-3", "status": "Inactive", "roles": [f"{MEMBER}Learner"]},
    ]
    return lms


def memberships(session: Session) -> dict[str, bool]:
    rows = session.execute(
        select(User.sub, CourseMembership.active)
        .join(CourseMembership.user)
        .execution_options(populate_existing=True)
    )
    return {sub: active for sub, active in rows}


def test_first_launch_pulls_the_roster_through_a_real_worker(
    agent: Browser,
    nrps_lms: DevPlatform,
    services: PlatformServices,
    session: Session,
    drain_jobs: Callable[..., int],
) -> None:
    claim = {
        NRPS_CLAIM: {
            "context_memberships_url": f"{services.origin}/nrps",
            "service_versions": ["2.0"],
        }
    }
    assert agent.full_launch(nrps_lms, **claim).status_code == 200
    assert drain_jobs() == 1
    assert memberships(session) == {"user-1": True, "user-2": True, "prof-1": True, "user-3": False}
    noor = session.scalars(select(User).where(User.sub == "user-2")).one()
    assert noor.name == "Noor N"
    # A second launch does not queue another pull: the daily sweep keeps it fresh.
    assert agent.full_launch(nrps_lms, **claim).status_code == 200
    assert drain_jobs() == 0


def test_people_who_left_the_course_become_inactive(
    agent: Browser,
    nrps_lms: DevPlatform,
    services: PlatformServices,
    session: Session,
    drain_jobs: Callable[..., int],
) -> None:
    claim = {NRPS_CLAIM: {"context_memberships_url": f"{services.origin}/nrps"}}
    agent.full_launch(nrps_lms, **claim)
    drain_jobs()
    services.members = [m for m in services.members if m["user_id"] != "user-2"]
    from workers.jobs import queue_roster_syncs

    assert queue_roster_syncs() == 1
    drain_jobs()
    assert memberships(session)["user-2"] is False
    assert memberships(session)["user-1"] is True


def test_a_refused_service_token_fails_the_job_visibly(
    agent: Browser,
    nrps_lms: DevPlatform,
    services: PlatformServices,
    session: Session,
    drain_jobs: Callable[..., int],
) -> None:
    services.refuse_tokens = True
    agent.full_launch(
        nrps_lms, **{NRPS_CLAIM: {"context_memberships_url": f"{services.origin}/nrps"}}
    )
    drain_jobs()
    row = session.scalars(select(OutboxJob).execution_options(populate_existing=True)).one()
    assert row.last_error.startswith("RosterError: the roster could not be read")
    assert services.token_requests == 1


def test_a_linked_program_pulls_its_links_members_with_rlid(
    agent: Browser,
    nrps_lms: DevPlatform,
    services: PlatformServices,
    session: Session,
    drain_jobs: Callable[..., int],
) -> None:
    from plugin.models import Course
    from plugin.programs.service import create_program

    claim = {NRPS_CLAIM: {"context_memberships_url": f"{services.origin}/nrps"}}
    agent.full_launch(nrps_lms, **claim)
    drain_jobs()  # the course roster, without rlid
    course_id = session.scalars(select(Course.id)).one()
    program = create_program(
        session, course_id=course_id, title="Linked", tracks=["career"], actor_user_id=None
    )
    session.commit()
    services.link_members["Canvas-Link-9"] = [
        {"user_id": "user-1", "status": "Active", "roles": [f"{MEMBER}Learner"]},
        {"user_id": "prof-1", "status": "Active", "roles": [f"{MEMBER}Instructor"]},
        {"user_id": "user-4", "status": "Active", "roles": [f"{MEMBER}Learner"]},
    ]
    link = {
        "https://purl.imsglobal.org/spec/lti/claim/custom": {"program_id": str(program.id)},
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "Canvas-Link-9"},
    }
    agent.full_launch(nrps_lms, **claim, **link)
    assert drain_jobs() == 1
    # Both pages, capitals kept (pylti1p3 2.0.0 lowercases the Link header's next URL).
    assert services.rlids[-2:] == ["Canvas-Link-9", "Canvas-Link-9"]
    session.refresh(program)
    subs = {
        u.id: u.sub
        for u in session.scalars(select(User).where(User.id.in_(program.link_member_ids)))
    }
    assert sorted(subs.values()) == ["prof-1", "user-1", "user-4"]
    # The link's roster adds people to the course but deactivates no one.
    assert memberships(session)["user-2"] is True
    assert memberships(session)["user-4"] is True
    # Later launches do not pull it again; the daily sweep does (course and link).
    agent.full_launch(nrps_lms, **claim, **link)
    assert drain_jobs() == 0
    from workers.jobs import queue_roster_syncs

    queue_roster_syncs()
    assert drain_jobs() == 2
