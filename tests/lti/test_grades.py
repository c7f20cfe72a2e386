"""AGS participation score: line item, score body and media type, queued after commit only."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Request, Response

from plugin.devplatform.signer import CLAIM, MEMBERSHIP, DevPlatform
from plugin.jobs import get_queue
from plugin.lti.placement import AGS_CLAIM, SCOPE_LINEITEM, SCOPE_SCORE
from plugin.lti.registrations import PlatformInput, add_platform
from plugin.lti.tool_keys import ensure_signing_key, published_jwks
from plugin.models import (
    OutboxJob,
    Participant,
    Profile,
    Program,
    RelationshipOrigin,
    Track,
    User,
)
from plugin.models.goals import Goal, GoalUpdate
from plugin.programs.relationships import propose_relationship
from plugin.programs.service import create_program
from tests.conftest import serving
from tests.lti.conftest import Browser, KeysetServer, home_path

SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"


@dataclass
class Gradebook:
    """A platform's token endpoint and AGS line items and scores, over real HTTP."""

    port: int
    tool_jwks: dict[str, Any] = field(default_factory=dict)
    lineitems: list[dict[str, Any]] = field(default_factory=list)
    created: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    scores: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    token_scopes: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def gradebook() -> Iterator[Gradebook]:
    holder: dict[str, Gradebook] = {}

    @Request.application
    def serve(request: Request) -> Response:
        book = holder["g"]
        if request.path == "/token":
            form = parse_qs(request.get_data(as_text=True))
            assertion = form["client_assertion"][0]
            kid = jwt.get_unverified_header(assertion)["kid"]
            key = next(k for k in book.tool_jwks["keys"] if k["kid"] == kid)
            jwt.decode(
                assertion, jwt.PyJWK(key).key, algorithms=["RS256"], audience=f"{book.origin}/token"
            )
            book.token_scopes.append(form["scope"][0])
            body = {"access_token": "ags-token", "token_type": "Bearer", "expires_in": 3600}
            return Response(json.dumps(body), mimetype="application/json")
        if request.headers.get("Authorization") != "Bearer ags-token":
            return Response("unauthorized", status=401)
        if request.path == "/lineitems" and request.method == "GET":
            return Response(
                json.dumps(book.lineitems),
                mimetype="application/vnd.ims.lis.v2.lineitemcontainer+json",
            )
        if request.path == "/lineitems" and request.method == "POST":
            body = json.loads(request.get_data(as_text=True))
            book.created.append((request.content_type or "", body))
            item = {**body, "id": f"{book.origin}/lineitems/{len(book.lineitems) + 1}"}
            book.lineitems.append(item)
            return Response(json.dumps(item), status=201, mimetype=LINEITEM_TYPE)
        if request.path.endswith("/scores") and request.method == "POST":
            book.scores.append(
                (
                    request.path,
                    request.content_type or "",
                    json.loads(request.get_data(as_text=True)),
                )
            )
            return Response(status=204)
        return Response("not found", status=404)

    with serving(serve) as port:
        holder["g"] = Gradebook(port=port)
        yield holder["g"]


@pytest.fixture
def ags_lms(
    app: Flask, session: Session, gradebook: Gradebook, keyset_server: KeysetServer
) -> DevPlatform:
    lms = DevPlatform(issuer="https://canvas.example.edu", client_id="client-1")
    keyset_server.keysets["canvas"] = lms.jwks()
    add_platform(
        session,
        PlatformInput(
            issuer=lms.issuer,
            client_id=lms.client_id,
            auth_login_url="https://canvas.example.edu/auth",
            auth_token_url=f"{gradebook.origin}/token",
            key_set_url=keyset_server.url("canvas"),
            deployment_ids=(lms.deployment_id,),
        ),
        allow_http_loopback=True,
    )
    ensure_signing_key(session)
    session.commit()
    gradebook.tool_jwks = published_jwks(session)
    return lms


@dataclass
class Scored:
    program: Program
    mentee: Participant
    mentor: Participant


@pytest.fixture
def scored_program(
    agent: Browser, ags_lms: DevPlatform, gradebook: Gradebook, session: Session
) -> Callable[..., Scored]:
    """A program with a participation rule, launched once with the AGS claim."""

    def make(rule: dict[str, Any] | None = None) -> Scored:
        # A first launch makes the course; the program is then placed in it.
        agent.full_launch(ags_lms, roles=[f"{MEMBERSHIP}Instructor"], sub="prof-1")
        course_id = session.scalars(select(Program.course_id)).first()
        if course_id is None:
            from plugin.models import Course

            course_id = session.scalars(select(Course.id)).one()
        program = create_program(
            session, course_id=course_id, title="Scored", tracks=["career"], actor_user_id=None
        )
        program.participation_rule = rule or {
            "maximum": 10,
            "points_per_relationship": 3,
            "points_per_checkin": 1,
        }
        session.commit()
        claim = {
            "scope": [SCOPE_LINEITEM, SCOPE_SCORE],
            "lineitems": f"{gradebook.origin}/lineitems",
        }
        landed = agent.full_launch(
            ags_lms,
            sub="student-1",
            **{f"{CLAIM}custom": {"program_id": str(program.id)}, AGS_CLAIM: claim},
        )
        assert home_path(landed) == f"/programs/{program.id}/"
        session.refresh(program)
        users = {u.sub: u for u in session.scalars(select(User))}
        mentee = Participant(program_id=program.id, user_id=users["student-1"].id, is_mentee=True)
        mentor = Participant(program_id=program.id, user_id=users["prof-1"].id, is_mentor=True)
        mentor.profile = Profile(tracks_offered=["career"])
        session.add_all([mentee, mentor])
        session.commit()
        return Scored(program=program, mentee=mentee, mentor=mentor)

    return make


def pair(session: Session, scored: Scored) -> None:
    propose_relationship(
        session,
        program=scored.program,
        mentee=scored.mentee,
        mentor=scored.mentor,
        track=Track.CAREER,
        origin=RelationshipOrigin.COORDINATOR,
        actor=None,
        activate=True,
    )


def test_the_launch_records_the_programs_gradebook(
    scored_program: Callable[..., Scored], gradebook: Gradebook
) -> None:
    scored = scored_program()
    assert scored.program.ags_lineitems_url == f"{gradebook.origin}/lineitems"
    assert scored.program.ags_scopes == sorted([SCOPE_LINEITEM, SCOPE_SCORE])
    assert scored.program.ags_lineitem_url == ""  # created when the first score is posted


def test_a_new_relationship_posts_both_scores_after_commit_through_a_real_worker(
    scored_program: Callable[..., Scored],
    gradebook: Gradebook,
    session: Session,
    drain_jobs: Callable[..., int],
) -> None:
    scored = scored_program()
    pair(session, scored)
    session.commit()
    assert drain_jobs() == 2

    # One line item, created once, with the program's maximum.
    assert len(gradebook.created) == 1
    content_type, item = gradebook.created[0]
    assert content_type == LINEITEM_TYPE
    assert item["label"] == "Mentorship participation"
    assert item["scoreMaximum"] == 10
    assert item["resourceId"] == f"program-{scored.program.id}"
    session.refresh(scored.program)
    assert scored.program.ags_lineitem_url == f"{gradebook.origin}/lineitems/1"

    by_user = {body["userId"]: (path, media, body) for path, media, body in gradebook.scores}
    assert set(by_user) == {"student-1", "prof-1"}
    path, media, body = by_user["student-1"]
    assert path == "/lineitems/1/scores"
    assert media == SCORE_TYPE
    assert body["scoreGiven"] == 3
    assert body["scoreMaximum"] == 10
    assert body["activityProgress"] == "InProgress"
    assert body["gradingProgress"] == "FullyGraded"
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    assert set(body) == {
        "scoreGiven",
        "scoreMaximum",
        "activityProgress",
        "gradingProgress",
        "timestamp",
        "userId",
    }
    assert all(SCOPE_SCORE in scopes for scopes in gradebook.token_scopes)


def test_the_score_follows_the_rule_and_is_capped(
    scored_program: Callable[..., Scored], session: Session
) -> None:
    from plugin.lti.grades import participation_score

    scored = scored_program({"maximum": 4, "points_per_relationship": 3, "points_per_checkin": 1})
    pair(session, scored)
    goal = Goal(program_id=scored.program.id, owner_id=scored.mentee.id, title="Publish")
    session.add(goal)
    session.flush()
    for _ in range(3):
        session.add(GoalUpdate(goal_id=goal.id, author_id=scored.mentee.id, kind="checkin"))
    session.flush()
    score = participation_score(session, scored.mentee)
    assert score is not None
    assert score.counts == {"points_per_checkin": 3, "points_per_relationship": 1}
    assert score.given == 4  # 3 + 3, capped at the maximum
    assert score.activity_progress == "Completed"


def test_the_job_is_idempotent(
    scored_program: Callable[..., Scored],
    gradebook: Gradebook,
    session: Session,
    app: Flask,
) -> None:
    from workers.jobs import post_participation_score

    scored = scored_program()
    pair(session, scored)
    session.commit()
    first = post_participation_score(scored.mentee.id)
    second = post_participation_score(scored.mentee.id)
    assert first == second == {"given": 3.0, "maximum": 10.0}
    assert len(gradebook.created) == 1  # the line item is made once
    bodies = [body for _, _, body in gradebook.scores]
    assert len(bodies) == 2
    assert {k: v for k, v in bodies[0].items() if k != "timestamp"} == {
        k: v for k, v in bodies[1].items() if k != "timestamp"
    }


def test_queued_after_commit_only_and_once_per_participant(
    scored_program: Callable[..., Scored],
    session: Session,
    redis_conn: Redis,
) -> None:
    scored = scored_program()
    queue = get_queue("default", connection=redis_conn)
    before = queue.count

    pair(session, scored)
    session.rollback()
    assert queue.count == before
    assert session.scalars(select(OutboxJob).where(OutboxJob.func.like("%score%"))).all() == []

    pair(session, scored)
    # Written in the transaction, not queued yet.
    keys = session.scalars(select(OutboxJob.dedupe_key).where(OutboxJob.func.like("%score%")))
    assert sorted(keys) == sorted(
        [f"ags-score-{scored.mentee.id}", f"ags-score-{scored.mentor.id}"]
    )
    assert queue.count == before
    # Deferring again while pending changes nothing.
    from plugin.lti.grades import queue_participation_score

    queue_participation_score(session, scored.mentee.id)
    session.commit()
    assert queue.count == before + 2


def test_no_gradebook_no_job(
    agent: Browser, ags_lms: DevPlatform, session: Session, redis_conn: Redis
) -> None:
    # A program without a participation rule keeps no score, whatever the platform offers.
    agent.full_launch(ags_lms, sub="student-1")
    from plugin.models import Course

    course_id = session.scalars(select(Course.id)).one()
    program = create_program(
        session, course_id=course_id, title="Plain", tracks=["career"], actor_user_id=None
    )
    user = session.scalars(select(User)).one()
    mentee = Participant(program_id=program.id, user_id=user.id, is_mentee=True)
    session.add(mentee)
    session.flush()
    from plugin.lti.grades import queue_participation_score

    queue_participation_score(session, mentee.id)
    session.commit()
    assert session.scalars(select(OutboxJob).where(OutboxJob.func.like("%score%"))).all() == []


def test_the_daily_sweep_posts_every_score_again(
    scored_program: Callable[..., Scored],
    gradebook: Gradebook,
    session: Session,
    drain_jobs: Callable[..., int],
) -> None:
    from workers.jobs import queue_participation_scores

    scored = scored_program()
    pair(session, scored)
    session.commit()
    drain_jobs()
    assert queue_participation_scores() == 2
    assert drain_jobs() == 2
    assert len(gradebook.scores) == 4
    assert len(gradebook.created) == 1
