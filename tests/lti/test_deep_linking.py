"""Deep Linking 2.0 end to end: picker, signed response, and launches of the placed link."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from plugin.devplatform.signer import CLAIM, MEMBERSHIP, DevPlatform
from plugin.models import Course, Program
from plugin.programs.service import create_program
from tests.lti.conftest import LAUNCH_URL, TOOL, Browser, home_path, launch_token

RETURN_URL = "https://canvas.example.edu/courses/1/deep_linking_response"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
INSTRUCTOR = [f"{MEMBERSHIP}Instructor"]


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in {html}"
    return found.group(1)


def deep_link_launch(agent: Browser, lms: DevPlatform, **claims: Any) -> TestResponse:
    login = agent.login(lms)
    settings = {
        k: claims.pop(k) for k in ("data", "accept_types", "roles", "context_id") if k in claims
    }
    body = lms.deep_linking_claims(
        nonce=login.nonce, target_link_uri=LAUNCH_URL, return_url=RETURN_URL, **settings
    )
    body.update(claims)
    return agent.launch(lms.sign(body), login.state)


def picker_action(response: TestResponse) -> str:
    html = response.get_data(as_text=True)
    found = re.search(r'action="(/lti/deep-link/\d+)"', html)
    assert found, html
    return found.group(1)


def place(agent: Browser, picker: TestResponse, **form: Any) -> TestResponse:
    html = picker.get_data(as_text=True)
    data = {"lt": hidden(html, "lt"), "picker": hidden(html, "picker"), **form}
    return agent.client.post(picker_action(picker), data=data, base_url=TOOL)


def verified(client: Any, token: str, lms: DevPlatform) -> dict[str, Any]:
    """The response JWT's claims, verified against the tool's published JWKS."""
    jwks = client.get("/.well-known/jwks.json", base_url=TOOL).get_json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience=lms.issuer,
        issuer=lms.client_id,
        options={"require": ["exp", "iat", "nonce"]},
    )
    return claims


def test_an_instructor_creates_a_program_and_the_platform_gets_a_signed_link(
    agent: Browser, lms: DevPlatform, session: Session
) -> None:
    picker = deep_link_launch(agent, lms, data="opaque-platform-state")
    assert picker.status_code == 200, picker.get_data(as_text=True)
    assert "Create a program" in picker.get_data(as_text=True)

    answer = place(agent, picker, program="new", title="Research mentoring", tracks="research")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    html = answer.get_data(as_text=True)
    assert f'action="{RETURN_URL}"' in html
    claims = verified(agent.client, hidden(html, "JWT"), lms)

    program = session.scalars(select(Program).where(Program.title == "Research mentoring")).one()
    assert claims[f"{CLAIM}message_type"] == "LtiDeepLinkingResponse"
    assert claims[f"{CLAIM}version"] == "1.3.0"
    assert claims[f"{CLAIM}deployment_id"] == lms.deployment_id
    assert claims["nonce"]
    assert claims[f"{DL}data"] == "opaque-platform-state"
    assert claims[f"{DL}content_items"] == [
        {
            "type": "ltiResourceLink",
            "title": "Research mentoring",
            "url": LAUNCH_URL,
            "custom": {"program_id": str(program.id)},
        }
    ]


def test_the_placed_link_opens_its_program_and_records_the_resource_link(
    agent: Browser, lms: DevPlatform, session: Session
) -> None:
    picker = deep_link_launch(agent, lms)
    answer = place(agent, picker, program="new", title="Clinical pairs", tracks="clinical")
    item = verified(agent.client, hidden(answer.get_data(as_text=True), "JWT"), lms)[
        f"{DL}content_items"
    ][0]
    program = session.get(Program, int(item["custom"]["program_id"]))
    assert program is not None
    assert program.resource_link_id == ""
    # A second program: without the link, a coordinator would land on the course's list.
    create_program(
        session,
        course_id=program.course_id,
        title="Other",
        tracks=["career"],
        actor_user_id=None,
    )
    session.commit()

    launched = agent.full_launch(
        lms,
        **{
            f"{CLAIM}custom": item["custom"],
            f"{CLAIM}resource_link": {"id": "canvas-link-9"},
        },
    )
    assert launched.status_code == 200
    assert home_path(launched) == f"/programs/{program.id}/"
    session.refresh(program)
    assert program.resource_link_id == "canvas-link-9"
    page = agent.client.get(
        home_path(launched), query_string={"lt": launch_token(launched)}, base_url=TOOL
    )
    assert page.status_code == 200
    assert "Clinical pairs" in page.get_data(as_text=True)

    # A platform that drops the custom parameter still opens it by its resource link.
    again = agent.full_launch(lms, **{f"{CLAIM}resource_link": {"id": "canvas-link-9"}})
    assert home_path(again) == f"/programs/{program.id}/"


def test_an_instructor_can_pick_an_existing_program(
    agent: Browser, lms: DevPlatform, session: Session
) -> None:
    picker = deep_link_launch(agent, lms)
    course = session.scalars(select(Course)).one()
    existing = create_program(
        session, course_id=course.id, title="Existing", tracks=["career"], actor_user_id=None
    )
    session.commit()
    answer = place(agent, picker, program=str(existing.id))
    item = verified(agent.client, hidden(answer.get_data(as_text=True), "JWT"), lms)[
        f"{DL}content_items"
    ][0]
    assert item["custom"] == {"program_id": str(existing.id)}
    assert f"{DL}data" not in verified(
        agent.client, hidden(answer.get_data(as_text=True), "JWT"), lms
    )


def test_the_picker_refuses_a_program_of_another_course(
    agent: Browser, new_agent: Callable[[], Browser], lms: DevPlatform, session: Session
) -> None:
    # Course 2 of the same platform has a program; course 1's instructor deep links.
    other = new_agent()
    other_launch = deep_link_launch(other, lms, context_id="course-2")
    foreign = place(other, other_launch, program="new", title="Not yours", tracks="career")
    assert foreign.status_code == 200
    foreign_id = session.scalars(select(Program.id).where(Program.title == "Not yours")).one()

    picker = deep_link_launch(agent, lms)
    answer = place(agent, picker, program=str(foreign_id))
    assert answer.status_code == 400
    assert "JWT" not in answer.get_data(as_text=True)
    # Nor can course 1's picker token be replayed against course 2's URL.
    html = picker.get_data(as_text=True)
    url = picker_action(other_launch)
    data = {"lt": hidden(html, "lt"), "picker": hidden(html, "picker"), "program": "new"}
    assert agent.client.post(url, data=data, base_url=TOOL).status_code == 403


def test_a_learner_cannot_deep_link(agent: Browser, lms: DevPlatform, session: Session) -> None:
    response = deep_link_launch(agent, lms, roles=[f"{MEMBERSHIP}Learner"])
    assert response.status_code == 403
    assert "Only instructors can add Preceptor" in response.get_data(as_text=True)
    assert "deep_link_not_instructor" in response.get_data(as_text=True)
    assert session.scalars(select(Program)).all() == []


def test_a_learner_cannot_use_an_instructors_picker_with_their_own_token(
    agent: Browser, new_agent: Callable[[], Browser], lms: DevPlatform
) -> None:
    picker = deep_link_launch(agent, lms)
    learner = new_agent()
    landing = learner.full_launch(lms, sub="user-9", **{f"{CLAIM}context": {"id": "course-1"}})
    data = {
        "lt": launch_token(landing),
        "picker": hidden(picker.get_data(as_text=True), "picker"),
        "program": "new",
        "title": "Sneaky",
        "tracks": "career",
    }
    response = learner.client.post(picker_action(picker), data=data, base_url=TOOL)
    assert response.status_code == 403


@pytest.mark.parametrize(
    "settings",
    [
        None,
        {"accept_types": ["ltiResourceLink"]},
        {"deep_link_return_url": "javascript:alert(1)", "accept_types": ["ltiResourceLink"]},
        {"deep_link_return_url": RETURN_URL, "accept_types": []},
        {"deep_link_return_url": RETURN_URL, "accept_types": "ltiResourceLink"},
        {"deep_link_return_url": RETURN_URL, "accept_types": ["link"], "accept_multiple": "yes"},
    ],
)
def test_a_malformed_deep_linking_settings_claim_is_refused(
    agent: Browser, lms: DevPlatform, settings: dict[str, Any] | None
) -> None:
    response = deep_link_launch(agent, lms, **{f"{DL}deep_linking_settings": settings})
    assert response.status_code == 400
    assert "deep_linking_settings_invalid" in response.get_data(as_text=True)


def test_a_placement_that_takes_no_resource_links_is_refused_clearly(
    agent: Browser, lms: DevPlatform
) -> None:
    response = deep_link_launch(agent, lms, accept_types=["file", "html"])
    assert response.status_code == 400
    assert "deep_link_type_unsupported" in response.get_data(as_text=True)


def test_a_foreign_or_tampered_program_id_never_opens_another_tenants_program(
    agent: Browser,
    new_agent: Callable[[], Browser],
    lms: DevPlatform,
    register_platform: Callable[..., DevPlatform],
    session: Session,
    app: Flask,
) -> None:
    # Another school (platform) has a program.
    moodle = register_platform("moodle", client_id="m-1", deployment_id="m-dep")
    other = new_agent()
    placed = place(
        other,
        deep_link_launch(other, moodle),
        program="new",
        title="Moodle program",
        tracks="career",
    )
    assert placed.status_code == 200
    foreign = session.scalars(select(Program).where(Program.title == "Moodle program")).one()

    # A Canvas link whose program_id names it (copied, or tampered with by a platform admin).
    landed = agent.full_launch(
        lms,
        roles=INSTRUCTOR,
        **{f"{CLAIM}custom": {"program_id": str(foreign.id)}},
    )
    assert landed.status_code == 200
    home = home_path(landed)
    assert home.startswith("/courses/")
    assert home != f"/programs/{foreign.id}/"
    page = agent.client.get(
        f"/programs/{foreign.id}/", query_string={"lt": launch_token(landed)}, base_url=TOOL
    )
    assert page.status_code == 404
    session.refresh(foreign)
    assert foreign.resource_link_id == ""  # the foreign launch recorded nothing on it


def test_deep_linking_outside_a_course_is_refused_clearly(agent: Browser, lms: DevPlatform) -> None:
    response = deep_link_launch(agent, lms, context_id=None)
    assert response.status_code == 400
    assert "deep_link_no_course" in response.get_data(as_text=True)
