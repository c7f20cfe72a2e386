"""Who may use the coordinator routes: every route and method, every role, own program vs
another program in the same course, another course and another platform, and ids of
another program's objects slipped into this program's URLs and forms.

Every person sends the same request to the same data (tests.programs.matrix undoes each
request's writes); a refusal must leave every row as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.roles import MEMBERSHIP, CourseRole
from plugin.lti.session import read_launch_token
from plugin.models import (
    Circle,
    CircleMember,
    Course,
    MatchProposal,
    MatchRound,
    Participant,
    ParticipantStatus,
    Program,
    Relationship,
    RelationshipStatus,
    RoundStatus,
    Track,
    User,
)
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant, closed_not_working
from tests.programs.forms import database_snapshot
from tests.programs.matrix import fill, fill_form, names_in, run_matrix
from tests.programs.test_coordinator_settings import valid_form as settings_form

IMPORT_CSV = "name,email,tracks,capacity\nAda Alumna,ada@alumni.example.org,research;career,2\n"

#: Every coordinator route: (method, path, form, status for a coordinator of the program).
#: Placeholders name a program's objects (see ``Objects``), in the path and in the form.
ROUTES: list[tuple[str, str, dict[str, Any], int]] = [
    ("GET", "/programs/{program}/coordinator/", {}, 200),
    (
        "POST",
        "/programs/{program}/coordinator/people/bulk",
        {"action": "withdraw", "selected": ["p{mentee}"]},
        303,
    ),
    ("GET", "/programs/{program}/coordinator/settings", {}, 200),
    ("POST", "/programs/{program}/coordinator/settings", settings_form(title="Renamed"), 303),
    ("GET", "/programs/{program}/coordinator/audit", {}, 200),
    ("GET", "/programs/{program}/coordinator/people/{newcomer}/pair", {}, 200),
    (
        "POST",
        "/programs/{program}/coordinator/people/{newcomer}/pair",
        {"mentor_id": "{mentor}", "track": "career"},
        303,
    ),
    ("GET", "/programs/{program}/coordinator/people/{invited}/invitation", {}, 200),
    ("POST", "/programs/{program}/coordinator/people/{invited}/invitation", {}, 303),
    ("GET", "/programs/{program}/coordinator/relationships", {}, 200),
    (
        "POST",
        "/programs/{program}/coordinator/relationships/bulk",
        {"selected": ["{rel}"], "reason": "completed"},
        303,
    ),
    ("GET", "/programs/{program}/coordinator/relationships/{rel}", {}, 200),
    (
        "POST",
        "/programs/{program}/coordinator/relationships/{rel}/status",
        {"action": "pause"},
        303,
    ),
    ("GET", "/programs/{program}/coordinator/export/participants.csv", {}, 200),
    ("GET", "/programs/{program}/coordinator/export/relationships.csv", {}, 200),
    ("GET", "/programs/{program}/coordinator/import", {}, 200),
    ("POST", "/programs/{program}/coordinator/import", {"csv_text": IMPORT_CSV}, 200),
    ("GET", "/programs/{program}/coordinator/circles", {}, 200),
    ("POST", "/programs/{program}/coordinator/circles", {"name": "Second circle"}, 303),
    ("GET", "/programs/{program}/coordinator/circles/{circle}", {}, 200),
    (
        "POST",
        "/programs/{program}/coordinator/circles/{circle}/members",
        {"members": ["{newcomer}"]},
        303,
    ),
    ("POST", "/programs/{program}/coordinator/circles/{circle}/members/{mentee}/remove", {}, 303),
    ("POST", "/programs/{program}/coordinator/circles/{circle}/close", {}, 303),
    ("GET", "/programs/{program}/coordinator/goals", {}, 200),
    ("GET", "/programs/{program}/coordinator/deletion-requests", {}, 200),
    ("POST", "/programs/{program}/coordinator/people/{mentee}/erase", {"confirm": "yes"}, 303),
    ("GET", "/programs/{program}/coordinator/rounds", {}, 200),
    ("POST", "/programs/{program}/coordinator/rounds", {"objective": "max_matched"}, 303),
    ("GET", "/programs/{program}/coordinator/rounds/{round}", {}, 200),
    (
        "POST",
        "/programs/{program}/coordinator/rounds/{round}/proposals/{proposal}",
        {"action": "lock"},
        303,
    ),
    ("POST", "/programs/{program}/coordinator/rounds/{round}/rerun", {}, 303),
    ("POST", "/programs/{program}/coordinator/rounds/{round}/publish", {}, 303),
    ("GET", "/programs/{program}/coordinator/rematch/{closed}", {}, 200),
    (
        "POST",
        "/programs/{program}/coordinator/rematch/{closed}",
        {"mentor_id": "{mentor}"},
        303,
    ),
    ("GET", "/programs/{program}/coordinator/attention", {}, 200),
    (
        "POST",
        "/programs/{program}/coordinator/attention/{rel}/handled",
        {"note": "Called them both"},
        303,
    ),
    ("GET", "/programs/{program}/coordinator/relationships/{rel}/feedback", {}, 200),
    ("GET", "/programs/{program}/coordinator/dashboard", {}, 200),
    ("GET", "/programs/{program}/coordinator/dashboard/funnel.csv", {}, 200),
    ("GET", "/programs/{program}/coordinator/export/meetings.csv", {}, 200),
    ("POST", "/programs/{program}/coordinator/export/research.zip", {}, 200),
    ("GET", "/programs/{program}/coordinator/followups", {}, 200),
]
#: What the completeness test reads: (method, path) of every row.
COVERED = [(method, path) for method, path, _, _ in ROUTES]


def _ids(row: tuple[str, str, dict[str, Any], int]) -> str:
    return f"{row[0]} {row[1]}"


@dataclass
class Objects:
    """One program and an object of each kind its coordinator routes name."""

    program: Program
    mentee: Participant
    newcomer: Participant  # a mentee in no relationship or circle yet
    mentor: Participant
    invited: Participant
    rel: Relationship
    closed: Relationship  # closed as not working out: waiting for a re-match
    circle: Circle
    round: MatchRound
    proposal: MatchProposal

    def ids(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name).id for f in fields(self)}


@dataclass
class World:
    a: Objects
    b: Objects
    people: dict[str, Person | None]


def _objects(
    session: Session,
    tenant: Tenant,
    program: Program,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> Objects:
    mentee = enroll(program, make_user(tenant, LEARNER), mentee=True)
    newcomer = enroll(program, make_user(tenant, LEARNER), mentee=True)
    mentor = enroll(program, make_user(tenant, LEARNER), mentor=True)  # a peer mentor
    former = enroll(program, make_user(tenant, LEARNER), mentor=True)
    invited = Participant(
        program_id=program.id,
        is_mentor=True,
        status=ParticipantStatus.INVITED,
        invite_name="Invited",
        invite_email=f"invited{program.id}@example.org",
    )
    now = utcnow()
    rel = Relationship(
        program_id=program.id,
        mentee_id=mentee.id,
        mentor_id=mentor.id,
        track=Track.RESEARCH,
        status=RelationshipStatus.ACTIVE,
        started_at=now - timedelta(days=40),
    )
    closed = closed_not_working(program, mentee, former, Track.CAREER)
    circle = Circle(program_id=program.id, name="Circle")
    round_ = MatchRound(program_id=program.id, status=RoundStatus.READY)
    session.add_all([invited, rel, closed, circle, round_])
    session.flush()
    proposal = MatchProposal(
        round_id=round_.id, mentee_id=newcomer.id, mentor_id=mentor.id, track=Track.CLINICAL
    )
    session.add_all([CircleMember(circle_id=circle.id, participant_id=mentee.id), proposal])
    session.flush()
    return Objects(
        program, mentee, newcomer, mentor, invited, rel, closed, circle, round_, proposal
    )


@pytest.fixture
def world(
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> World:
    home = make_tenant()
    a = _objects(session, home, make_program(home, title="A"), make_user, enroll)
    b = _objects(session, home, make_program(home, title="B"), make_user, enroll)
    student_coordinator = make_user(home, LEARNER)
    enroll(a.program, student_coordinator, coordinator=True)
    coordinator_of_b = make_user(home, LEARNER)
    enroll(b.program, coordinator_of_b, coordinator=True)
    withdrawn_coordinator = make_user(home, LEARNER)
    withdrawn = enroll(a.program, withdrawn_coordinator, coordinator=True)
    withdrawn.status = ParticipantStatus.WITHDRAWN
    # Another course on the same platform and deployment, and another platform.
    sibling_course = Course(deployment_id=home.deployment.id, context_id="ctx-sibling")
    session.add(sibling_course)
    session.flush()
    sibling = Tenant(home.platform, home.deployment, sibling_course)
    elsewhere = make_tenant()
    people: dict[str, Person | None] = {
        "coordinator by course role": as_person(
            home, make_user(home, INSTRUCTOR), CourseRole.INSTRUCTOR
        ),
        "coordinator by program role": as_person(home, student_coordinator, CourseRole.LEARNER),
        "teaching assistant": as_person(
            home, make_user(home, f"{MEMBERSHIP}TeachingAssistant"), CourseRole.TEACHING_ASSISTANT
        ),
        "administrator": as_person(
            home, make_user(home, f"{MEMBERSHIP}Administrator"), CourseRole.ADMINISTRATOR
        ),
        "course designer": as_person(
            home, make_user(home, f"{MEMBERSHIP}ContentDeveloper"), CourseRole.CONTENT_DEVELOPER
        ),
        "withdrawn coordinator": as_person(home, withdrawn_coordinator, CourseRole.LEARNER),
        "mentee": as_person(home, a.mentee.user, CourseRole.LEARNER),
        "mentor": as_person(home, a.mentor.user, CourseRole.LEARNER),
        "learner not enrolled": as_person(home, make_user(home, LEARNER), CourseRole.LEARNER),
        "coordinator of program B": as_person(home, coordinator_of_b, CourseRole.LEARNER),
        "instructor of another course": as_person(
            sibling, make_user(sibling, INSTRUCTOR), CourseRole.INSTRUCTOR
        ),
        "instructor on another platform": as_person(
            elsewhere, make_user(elsewhere, INSTRUCTOR), CourseRole.INSTRUCTOR
        ),
        "no launch": None,
    }
    return World(a=a, b=b, people=people)


#: What each person gets on program A's coordinator routes ("ok": the row's status).
EXPECTED: dict[str, int | str] = {
    "coordinator by course role": "ok",
    "coordinator by program role": "ok",
    "teaching assistant": "ok",
    "administrator": "ok",
    "course designer": 403,
    "withdrawn coordinator": 403,
    "mentee": 403,
    "mentor": 403,
    "learner not enrolled": 403,
    "coordinator of program B": 403,
    "instructor of another course": 404,
    "instructor on another platform": 404,
    "no launch": 401,
}
COORDINATORS = ["coordinator by course role", "coordinator by program role"]


@pytest.mark.parametrize(("method", "path", "form", "ok"), ROUTES, ids=list(map(_ids, ROUTES)))
def test_coordinator_routes_authorization_matrix(
    app: Flask,
    session: Session,
    world: World,
    method: str,
    path: str,
    form: dict[str, Any],
    ok: int,
) -> None:
    ids = world.a.ids()
    got = run_matrix(app, session, world.people, method, fill(path, ids), fill_form(form, ids))
    assert got == {who: ok if want == "ok" else want for who, want in EXPECTED.items()}


def _foreign_variants() -> list[tuple[str, str, dict[str, Any], str]]:
    """Each row once per object it names (in the path or the form), that one from B."""
    variants = []
    for method, path, form, _ in ROUTES:
        variants += [(method, path, form, n) for n in names_in(path, form) if n != "program"]
    return variants


def test_another_programs_objects_in_this_programs_requests_are_refused(
    app: Flask, session: Session, world: World
) -> None:
    """Program A's coordinators put one of program B's ids at a time into a request on
    program A: in the path it is not found (404), in the form it is refused (400). Nothing
    changes either way (run_matrix checks every refusal)."""
    people = {who: world.people[who] for who in COORDINATORS}
    got, expected = {}, {}
    for method, path, form, foreign in _foreign_variants():
        ids = world.a.ids() | {foreign: world.b.ids()[foreign]}
        key = f"{method} {path} with {foreign} of B"
        got[key] = run_matrix(app, session, people, method, fill(path, ids), fill_form(form, ids))
        expected[key] = dict.fromkeys(COORDINATORS, 404 if f"{{{foreign}}}" in path else 400)
    assert got == expected


def test_a_program_coordinator_cannot_open_another_program_in_the_course(
    app: Flask, session: Session, world: World
) -> None:
    people = {"coordinator by program role": world.people["coordinator by program role"]}
    ids = world.b.ids()
    got = {
        f"{method} {path}": run_matrix(
            app, session, people, method, fill(path, ids), fill_form(form, ids)
        )["coordinator by program role"]
        for method, path, form, _ in ROUTES
    }
    assert got == dict.fromkeys(got, 403)


def test_a_cross_site_post_is_refused(app: Flask, session: Session, world: World) -> None:
    person = world.people["coordinator by course role"]
    assert person is not None
    before = database_snapshot(session)
    response = person.post(
        f"/programs/{world.a.program.id}/coordinator/people/bulk",
        {"action": "withdraw", "selected": [f"p{world.a.mentee.id}"]},
        headers={"Origin": "https://attacker.example"},
    )
    assert response.status_code == 403
    assert database_snapshot(session) == before


def test_course_members_of_another_course_cannot_be_made_coordinators(
    app: Flask, session: Session, world: World
) -> None:
    """The people list also selects course members by user id: one of another course is
    refused, and nobody is enrolled."""
    stranger = world.people["instructor of another course"]
    assert stranger is not None
    identity = read_launch_token(stranger.token)
    assert identity is not None
    got = run_matrix(
        app,
        session,
        {who: world.people[who] for who in COORDINATORS},
        "POST",
        f"/programs/{world.a.program.id}/coordinator/people/bulk",
        {"action": "make_coordinator", "selected": [f"u{identity.user_id}"]},
    )
    assert got == dict.fromkeys(COORDINATORS, 400)
