"""The scenario of the participant authorization matrices: a program with two pairs, a
coordinator, a learner who is not enrolled, and an object of every kind the participant
pages name; a second program in the same course with the same kinds of objects; and a
person of another course.

Persons are launched as they would be from the LMS (a real launch token each); None is
someone with no launch at all. A test module takes the scenario as its fixture ``world``
(``world = participant_world.world``); :func:`statuses` runs one row of a matrix on it, and
:func:`foreign_variants` and :func:`check_foreign_ids` put program B's objects into
program A's requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.roles import CourseRole
from plugin.models import (
    Circle,
    CircleMember,
    Goal,
    GoalUpdate,
    MeetingAttendee,
    Notification,
    Participant,
    Program,
    Relationship,
    RelationshipOrigin,
    Slot,
    Track,
    User,
)
from plugin.programs.relationships import propose_relationship
from tests.programs.conftest import (
    INSTRUCTOR,
    LEARNER,
    Person,
    Tenant,
    add_meeting,
    closed_not_working,
)
from tests.programs.matrix import fill, fill_form, names_in, run_matrix

__all__ = [
    "PERSONAS",
    "World",
    "check_foreign_ids",
    "foreign_variants",
    "per_persona",
    "statuses",
    "world",
]

#: The people of every participant matrix, in the order of each row's statuses.
PERSONAS = [
    "mentee",  # learner, in an active relationship with "mentor"
    "mentor",  # instructor (so also a coordinator by course role), mentor of "mentee"
    "other_mentee",  # learner, mentee of "other_mentor"; asked "mentor" for a second track
    "other_mentor",  # instructor, mentor of "other_mentee"
    "coordinator",  # instructor, not enrolled
    "learner",  # learner of the course, not enrolled
    "other_program",  # learner, mentee and coordinator of program B of the same course
    "other_course",  # instructor of another course on another platform
    "no_launch",
]


@dataclass
class World:
    """Program A's people and object ids (``ids``), and program B's objects under the
    same names (``ids_b``: B's mentee stands for "mentee" and "other_mentee", and so on)."""

    people: dict[str, Person | None]
    ids: dict[str, int]
    ids_b: dict[str, int]


def _pair(
    session: Session, program: Program, mentee: Participant, mentor: Participant, *, active: bool
) -> Relationship:
    return propose_relationship(
        session,
        program=program,
        mentee=mentee,
        mentor=mentor,
        track=Track.RESEARCH,
        origin=RelationshipOrigin.REQUEST,
        actor=mentee,
        activate=active,
    )


def _goal(session: Session, program: Program, relationship: Relationship) -> Goal:
    goal = Goal(
        program_id=program.id,
        owner_id=relationship.mentee_id,
        relationship_id=relationship.id,
        title="Submit an abstract",
        measure="Abstract submitted",
        target_date=utcnow().date() + timedelta(days=60),
    )
    session.add(goal)
    session.add(GoalUpdate(goal=goal, author_id=relationship.mentee_id, kind="created"))
    session.flush()
    return goal


def _kinds_of_objects(
    session: Session, program: Program, mentee: Participant, mentor: Participant, former: Any
) -> dict[str, int]:
    """An object of every kind around ``mentee`` and ``mentor``'s relationship: a goal, a
    meeting that started an hour ago, a circle, a slot, a notification, and a relationship
    with ``former`` closed as not working out (waiting for a re-match and an evaluation)."""
    now = utcnow()
    rel = _pair(session, program, mentee, mentor, active=True)
    closed = closed_not_working(program, mentee, former, Track.CLINICAL)
    circle = Circle(program_id=program.id, name="Peer circle")
    slot = Slot(
        program_id=program.id,
        mentor_id=mentor.id,
        weekday=2,
        local_start=time(9, 0),
        local_end=time(11, 0),
        time_zone="UTC",
        topics=["Residency applications"],
    )
    notification = Notification(recipient_id=mentee.id, kind="test", text="Hello")
    session.add_all([closed, circle, slot, notification])
    session.flush()
    session.add(CircleMember(circle_id=circle.id, participant_id=mentee.id))
    meeting = add_meeting(session, rel, now - timedelta(hours=1))
    meeting.attendees = [
        MeetingAttendee(participant_id=mentee.id),
        MeetingAttendee(participant_id=mentor.id),
    ]
    session.flush()
    return {
        "rel": rel.id,
        "goal": _goal(session, program, rel).id,
        "closed": closed.id,
        "circle": circle.id,
        "slot": slot.id,
        "notification": notification.id,
        "meeting": meeting.id,
    }


@pytest.fixture
def world(
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> World:
    """The scenario, committed."""
    home, elsewhere = make_tenant(), make_tenant()
    program = make_program(home, title="A")
    users = {
        "mentee": make_user(home, LEARNER),
        "mentor": make_user(home, INSTRUCTOR),
        "other_mentee": make_user(home, LEARNER),
        "other_mentor": make_user(home, INSTRUCTOR),
        "coordinator": make_user(home, INSTRUCTOR),
        "learner": make_user(home, LEARNER),
        "other_program": make_user(home, LEARNER),
    }
    mentee = enroll(program, users["mentee"], mentee=True, bio="")
    mentor = enroll(program, users["mentor"], mentor=True, bio="Mentor bio")
    other_mentee = enroll(program, users["other_mentee"], mentee=True)
    other_mentor = enroll(program, users["other_mentor"], mentor=True, bio="Other bio")
    former = enroll(program, make_user(home, INSTRUCTOR), mentor=True)
    mentee.profile.private_preferences = '{"seek": ["background.lgbtq"], "identify_as": []}'  # type: ignore[union-attr]
    mentor.profile.private_preferences = '{"seek": [], "identify_as": ["background.veteran"]}'  # type: ignore[union-attr]
    ids = _kinds_of_objects(session, program, mentee, mentor, former)
    theirs = _pair(session, program, other_mentee, other_mentor, active=True)
    request = propose_relationship(
        session,
        program=program,
        mentee=other_mentee,
        mentor=mentor,
        track=Track.CAREER,
        origin=RelationshipOrigin.REQUEST,
        actor=other_mentee,
    )
    ids |= {
        "program": program.id,
        "course": home.course.id,
        "mentee": mentee.id,
        "mentor": mentor.id,
        "other_mentee": other_mentee.id,
        "other_mentor": other_mentor.id,
        "their_goal": _goal(session, program, theirs).id,
        "request": request.id,
    }

    program_b = make_program(home, title="B")
    # Program B's mentee is one of its coordinators too: neither role reaches program A.
    mentee_b = enroll(program_b, users["other_program"], mentee=True, coordinator=True)
    mentor_b = enroll(program_b, make_user(home, INSTRUCTOR), mentor=True)
    asker_b = enroll(program_b, make_user(home, LEARNER), mentee=True)
    former_b = enroll(program_b, make_user(home, INSTRUCTOR), mentor=True)
    ids_b = _kinds_of_objects(session, program_b, mentee_b, mentor_b, former_b)
    request_b = propose_relationship(
        session,
        program=program_b,
        mentee=asker_b,
        mentor=mentor_b,
        track=Track.CAREER,
        origin=RelationshipOrigin.REQUEST,
        actor=asker_b,
    )
    ids_b |= {
        "program": program_b.id,
        "course": home.course.id,
        "mentee": mentee_b.id,
        "mentor": mentor_b.id,
        "other_mentee": asker_b.id,
        "other_mentor": mentor_b.id,
        "their_goal": ids_b["goal"],
        "request": request_b.id,
    }

    instructors = ("mentor", "other_mentor", "coordinator")
    roles = {n: CourseRole.INSTRUCTOR if n in instructors else CourseRole.LEARNER for n in users}
    people: dict[str, Person | None] = {
        name: as_person(home, users[name], roles[name]) for name in users
    }
    people["other_course"] = as_person(
        elsewhere, make_user(elsewhere, INSTRUCTOR), CourseRole.INSTRUCTOR
    )
    people["no_launch"] = None
    session.commit()
    return World(people={name: people[name] for name in PERSONAS}, ids=ids, ids_b=ids_b)


def per_persona(expected: list[int]) -> dict[str, int]:
    """A matrix row's statuses (in ``PERSONAS`` order) by persona."""
    return dict(zip(PERSONAS, expected, strict=True))


def statuses(
    app: Flask,
    session: Session,
    world: World,
    method: str,
    template: str,
    form: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Each persona's status for one row, program A's ids put into its path and form."""
    data = fill_form(form or {}, world.ids)
    return run_matrix(app, session, world.people, method, fill(template, world.ids), data)


def foreign_variants(
    get_matrix: list[tuple[str, list[int]]],
    post_matrix: list[tuple[str, dict[str, Any], list[int]]],
) -> list[tuple[str, str, dict[str, Any], str, list[str]]]:
    """Every row once per object it names, that one taken from program B, with the people
    the row allows (who would be let in were the id not checked)."""
    rows: list[tuple[str, str, dict[str, Any], list[int]]]
    rows = [("GET", page, {}, expected) for page, expected in get_matrix]
    rows += [("POST", action, form, expected) for action, form, expected in post_matrix]
    return [
        (method, path, form, name, [p for p, s in zip(PERSONAS, expected, strict=True) if s < 400])
        for method, path, form, expected in rows
        for name in names_in(path, form)
        if name not in ("program", "course")
    ]


def check_foreign_ids(
    app: Flask,
    session: Session,
    world: World,
    variants: list[tuple[str, str, dict[str, Any], str, list[str]]],
) -> dict[str, dict[str, int]]:
    """Each variant's statuses for the people it names: an id of B in the path must not be
    found; an id of B in the form must change nothing, whatever the answer."""
    got: dict[str, dict[str, int]] = {}
    for method, path, form, foreign, allowed in variants:
        ids = world.ids | {foreign: world.ids_b[foreign]}
        people = {who: world.people[who] for who in allowed}
        got[f"{method} {path} with {foreign} of B"] = run_matrix(
            app,
            session,
            people,
            method,
            fill(path, ids),
            fill_form(form, ids),
            writes_nothing=True,
        )
    return got
