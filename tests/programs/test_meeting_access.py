"""The authorization matrix of the meeting, slot, feedback, notification-preference and
calendar pages: each role, own meetings and relationships and someone else's, this
program, another program of the course and another course, and program B's ids put into
program A's requests. The scenario and the people are tests.programs.participant_world's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.programs import participant_world
from tests.programs.participant_world import (
    World,
    check_foreign_ids,
    foreign_variants,
    per_persona,
    statuses,
)


def _next_slot_occurrence() -> str:
    """The world's slots run Wednesdays 09:00-11:00 UTC: the first one bookable (a day ahead)."""
    day = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    day += timedelta(days=2)
    while day.weekday() != 2:
        day += timedelta(days=1)
    return day.isoformat()


IN_TEN_DAYS = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
MEETING_FORM = {
    "date": IN_TEN_DAYS,
    "start": "15:00",
    "end": "15:30",
    "time_zone": "UTC",
    "format": "virtual",
}


world = participant_world.world  # the scenario's fixture (pytest finds it by attribute)


#: (page, status per person in PERSONAS order: mentee, mentor, other_mentee, other_mentor,
#: coordinator, learner, other_program, other_course, no_launch). "mentor", "other_mentor"
#: and "coordinator" are instructors, so coordinators of every program of the course.
GET_MATRIX = [
    ("/programs/{program}/meetings/", [200, 200, 200, 200, 200, 200, 200, 404, 401]),
    ("/programs/{program}/meetings/{meeting}", [200, 200, 404, 200, 200, 404, 404, 404, 401]),
    (
        "/programs/{program}/meetings/{meeting}/feedback",
        [200, 200, 404, 404, 404, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/relationships/{rel}/meetings/new",
        [200, 200, 404, 200, 200, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/circles/{circle}/meetings/new",
        [200, 200, 404, 200, 200, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/relationships/{rel}/health",
        [200, 200, 404, 404, 404, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/relationships/{closed}/evaluation",
        [200, 404, 404, 404, 404, 404, 404, 404, 401],
    ),
    ("/programs/{program}/slots/", [404, 200, 404, 200, 404, 404, 404, 404, 401]),
    ("/programs/{program}/book", [200, 404, 200, 404, 404, 404, 404, 404, 401]),
    (
        "/programs/{program}/notifications/preferences",
        [200, 200, 200, 200, 403, 403, 403, 404, 401],
    ),
]

#: (action, form, status per person in PERSONAS order).
POST_MATRIX: list[tuple[str, dict[str, Any], list[int]]] = [
    (
        "/programs/{program}/meetings/{meeting}/record",
        {"status": "held"},
        [303, 303, 404, 303, 303, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/meetings/{meeting}/feedback",
        {"rating": "4", "useful": "yes", "comment": "Useful", "visibility": "private"},
        [303, 303, 404, 404, 404, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/relationships/{rel}/meetings/new",
        MEETING_FORM,
        [303, 303, 404, 303, 303, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/circles/{circle}/meetings/new",
        MEETING_FORM,
        [303, 303, 404, 303, 303, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/relationships/{rel}/health",
        {"score": "4", "comment": ""},
        [303, 303, 404, 404, 404, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/relationships/{closed}/evaluation",
        {"goals_met": "partly", "would_recommend": "yes", "comment": ""},
        [303, 404, 404, 404, 404, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/slots/",
        {
            "weekday": "3",
            "start": "14:00",
            "end": "15:00",
            "time_zone": "UTC",
            "duration_minutes": "30",
            "cutoff_hours": "24",
            "per_mentee_limit": "1",
            "format": "virtual",
        },
        [404, 303, 404, 303, 404, 404, 404, 404, 401],
    ),
    ("/programs/{program}/slots/{slot}/remove", {}, [404, 303, 404, 303, 303, 404, 404, 404, 401]),
    (
        "/programs/{program}/book",
        {
            "slot_id": "{slot}",
            "occurrence": _next_slot_occurrence(),
            "topic": "Residency applications",
        },
        [303, 404, 303, 404, 404, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/notifications/preferences",
        {"channel": "in_app", "kinds": []},
        [200, 200, 200, 200, 403, 403, 403, 404, 401],
    ),
    ("/programs/{program}/calendar/feed/open", {}, [303, 303, 303, 303, 404, 404, 404, 404, 401]),
    (
        "/programs/{program}/calendar/connect/google",
        {},
        [303, 303, 303, 303, 404, 404, 404, 404, 401],
    ),
]
#: What the completeness test reads: (method, path) of every row.
COVERED = [("GET", page) for page, _ in GET_MATRIX] + [
    ("POST", action) for action, _, _ in POST_MATRIX
]


@pytest.mark.parametrize(("page", "expected"), GET_MATRIX, ids=[p for p, _ in GET_MATRIX])
def test_who_may_open_each_meeting_page(
    app: Flask, session: Session, world: World, page: str, expected: list[int]
) -> None:
    assert statuses(app, session, world, "GET", page) == per_persona(expected)


@pytest.mark.parametrize(
    ("action", "form", "expected"), POST_MATRIX, ids=[a for a, _, _ in POST_MATRIX]
)
def test_who_may_take_each_meeting_action(
    app: Flask,
    session: Session,
    world: World,
    action: str,
    form: dict[str, Any],
    expected: list[int],
) -> None:
    assert statuses(app, session, world, "POST", action, form) == per_persona(expected)


def test_another_programs_objects_in_this_programs_requests_are_refused(
    app: Flask, session: Session, world: World
) -> None:
    """Program A's people, coordinators included, put one of program B's meetings,
    relationships, circles or slots into the requests program A lets them make: not found,
    and nothing changes."""
    variants = foreign_variants(GET_MATRIX, POST_MATRIX)
    got = check_foreign_ids(app, session, world, variants)
    expected = {
        f"{method} {path} with {foreign} of B": dict.fromkeys(allowed, 404)
        for method, path, _, foreign, allowed in variants
    }
    assert got == expected
