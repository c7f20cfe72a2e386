"""Who may use the coordinator routes: every route and method, every role, own program vs
another program in the same course, another course and another platform, and ids of
another program's objects slipped into this program's URLs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.models import (
    Circle,
    CircleMember,
    Course,
    Participant,
    ParticipantStatus,
    Program,
    Relationship,
    RelationshipStatus,
    User,
)
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant

#: Every coordinator route (method, path); ids are filled from a program's objects.
ROUTES = [
    ("GET", "/programs/{program}/coordinator/"),
    ("POST", "/programs/{program}/coordinator/people/bulk"),
    ("GET", "/programs/{program}/coordinator/settings"),
    ("POST", "/programs/{program}/coordinator/settings"),
    ("GET", "/programs/{program}/coordinator/audit"),
    ("GET", "/programs/{program}/coordinator/people/{mentee}/pair"),
    ("POST", "/programs/{program}/coordinator/people/{mentee}/pair"),
    ("GET", "/programs/{program}/coordinator/people/{invited}/invitation"),
    ("GET", "/programs/{program}/coordinator/relationships"),
    ("POST", "/programs/{program}/coordinator/relationships/bulk"),
    ("GET", "/programs/{program}/coordinator/relationships/{rel}"),
    ("POST", "/programs/{program}/coordinator/relationships/{rel}/status"),
    ("GET", "/programs/{program}/coordinator/export/participants.csv"),
    ("GET", "/programs/{program}/coordinator/export/relationships.csv"),
    ("GET", "/programs/{program}/coordinator/import"),
    ("POST", "/programs/{program}/coordinator/import"),
    ("GET", "/programs/{program}/coordinator/circles"),
    ("POST", "/programs/{program}/coordinator/circles"),
    ("GET", "/programs/{program}/coordinator/circles/{circle}"),
    ("POST", "/programs/{program}/coordinator/circles/{circle}/members"),
    ("POST", "/programs/{program}/coordinator/circles/{circle}/members/{mentee}/remove"),
    ("POST", "/programs/{program}/coordinator/circles/{circle}/close"),
    ("GET", "/programs/{program}/coordinator/goals"),
    ("GET", "/programs/{program}/coordinator/deletion-requests"),
    ("POST", "/programs/{program}/coordinator/people/{mentee}/erase"),
]
#: Routes that name an object of the program besides the program itself.
OBJECT_ROUTES = [
    r
    for r in ROUTES
    if "{mentee}" in r[1] or "{invited}" in r[1] or "{rel}" in r[1] or "{circle}" in r[1]
]


@dataclass
class Objects:
    program: Program
    mentee: Participant
    mentor: Participant
    invited: Participant
    rel: Relationship
    circle: Circle

    def fill(self, path: str) -> str:
        return path.format(
            program=self.program.id,
            mentee=self.mentee.id,
            invited=self.invited.id,
            rel=self.rel.id,
            circle=self.circle.id,
        )


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
    mentor = enroll(program, make_user(tenant, LEARNER), mentor=True)  # a peer mentor
    invited = Participant(
        program_id=program.id,
        is_mentor=True,
        status=ParticipantStatus.INVITED,
        invite_name="Invited",
        invite_email=f"invited{program.id}@example.org",
    )
    rel = Relationship(
        program_id=program.id,
        mentee_id=mentee.id,
        mentor_id=mentor.id,
        track="research",
        status=RelationshipStatus.ACTIVE,
    )
    circle = Circle(program_id=program.id, name="Circle")
    session.add_all([invited, rel, circle])
    session.flush()
    session.add(CircleMember(circle_id=circle.id, participant_id=mentee.id))
    session.flush()
    return Objects(program, mentee, mentor, invited, rel, circle)


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


#: What each person gets on program A's coordinator routes ("ok": the page or the action).
EXPECTED = {
    "coordinator by course role": "ok",
    "coordinator by program role": "ok",
    "mentee": 403,
    "mentor": 403,
    "learner not enrolled": 403,
    "coordinator of program B": 403,
    "instructor of another course": 404,
    "instructor on another platform": 404,
    "no launch": 401,
}


def _send(app: Flask, person: Person | None, method: str, path: str) -> int:
    if person is None:
        client = app.test_client()
        response = client.get(path) if method == "GET" else client.post(path, data={})
    else:
        response = person.get(path) if method == "GET" else person.post(path, {})
    return response.status_code


@pytest.mark.parametrize("who", list(EXPECTED))
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_coordinator_routes_authorization_matrix(
    app: Flask, world: World, who: str, method: str, path: str
) -> None:
    status = _send(app, world.people[who], method, world.a.fill(path))
    if EXPECTED[who] == "ok":
        assert status not in (401, 403, 404), status
    else:
        assert status == EXPECTED[who]


@pytest.mark.parametrize(
    ("method", "path"), OBJECT_ROUTES, ids=[f"{m} {p}" for m, p in OBJECT_ROUTES]
)
def test_another_programs_objects_in_this_programs_urls_are_not_found(
    app: Flask, world: World, method: str, path: str
) -> None:
    """Program A's coordinator puts program B's ids into program A's URLs."""
    foreign = path.format(
        program=world.a.program.id,
        mentee=world.b.mentee.id,
        invited=world.b.invited.id,
        rel=world.b.rel.id,
        circle=world.b.circle.id,
    )
    # Keep A's ids where the route names several objects, so only one is foreign at a time.
    assert _send(app, world.people["coordinator by course role"], method, foreign) == 404


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_a_program_coordinator_cannot_open_another_program_in_the_course(
    app: Flask, world: World, method: str, path: str
) -> None:
    person = world.people["coordinator by program role"]
    assert _send(app, person, method, world.b.fill(path)) == 403


def test_a_cross_site_post_is_refused(app: Flask, world: World) -> None:
    person = world.people["coordinator by course role"]
    assert person is not None
    response = person.post(
        f"/programs/{world.a.program.id}/coordinator/people/bulk",
        {"action": "withdraw", "selected": [f"p{world.a.mentee.id}"]},
        headers={"Origin": "https://attacker.example"},
    )
    assert response.status_code == 403


def test_bulk_relationship_ids_of_another_program_change_nothing(
    session: Session, world: World
) -> None:
    person = world.people["coordinator by course role"]
    assert person is not None
    response = person.post(
        f"/programs/{world.a.program.id}/coordinator/relationships/bulk",
        {"selected": [str(world.b.rel.id)], "reason": "completed"},
    )
    assert response.status_code == 400
    session.refresh(world.b.rel)
    assert world.b.rel.status == RelationshipStatus.ACTIVE
