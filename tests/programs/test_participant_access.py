"""The authorization matrix of the participant pages: each role, each page and action, own
data and someone else's, this program, another program of the course and another course,
and program B's ids put into program A's requests.

Every person sends the same request to the same data (tests.programs.matrix undoes each
request's writes); a refusal must leave every row as it was. Meeting, slot and feedback
pages are in test_meeting_access.py, on the same scenario (tests.programs.participant_world).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.models import Goal, Notification, Program
from tests.programs import participant_world
from tests.programs.forms import database_snapshot
from tests.programs.matrix import fill, run_matrix, send
from tests.programs.participant_world import (
    World,
    check_foreign_ids,
    foreign_variants,
    per_persona,
    statuses,
)
from tests.programs.test_enrollment import mentee_form

IN_A_MONTH = (utcnow() + timedelta(days=30)).date().isoformat()


world = participant_world.world  # the scenario's fixture (pytest finds it by attribute)


#: (page, status per person in PERSONAS order: mentee, mentor, other_mentee, other_mentor,
#: coordinator, learner, other_program, other_course, no_launch).
GET_MATRIX = [
    ("/programs/{program}/", [200, 200, 200, 200, 200, 200, 200, 404, 401]),
    ("/programs/{program}/profile", [200, 200, 200, 200, 200, 200, 200, 404, 401]),
    ("/programs/{program}/mentors", [200, 403, 200, 403, 403, 403, 403, 404, 401]),
    ("/programs/{program}/people/{mentor}", [200, 200, 200, 404, 404, 404, 404, 404, 401]),
    ("/programs/{program}/people/{mentee}", [200, 200, 404, 404, 404, 404, 404, 404, 401]),
    ("/programs/{program}/people/{other_mentee}", [404, 200, 200, 200, 404, 404, 404, 404, 401]),
    ("/programs/{program}/goals/new", [200, 403, 200, 403, 403, 403, 403, 404, 401]),
    ("/programs/{program}/goals/{goal}", [200, 200, 404, 404, 404, 404, 404, 404, 401]),
    ("/programs/{program}/goals/{their_goal}", [404, 404, 200, 200, 404, 404, 404, 404, 401]),
    ("/programs/{program}/privacy", [200, 200, 200, 200, 403, 403, 403, 404, 401]),
    ("/programs/{program}/my-data.json", [200, 200, 200, 200, 403, 403, 403, 404, 401]),
    ("/programs/{program}/rematch/{closed}", [200, 403, 404, 403, 403, 403, 403, 404, 401]),
    ("/courses/{course}/", [200, 200, 200, 200, 200, 200, 200, 403, 401]),
    ("/courses/{course}/privacy", [302, 302, 302, 302, 200, 200, 302, 403, 401]),
]

#: (action, form, status per person in PERSONAS order).
POST_MATRIX: list[tuple[str, dict[str, Any], list[int]]] = [
    (
        "/programs/{program}/mentors/{other_mentor}/request",
        {"track": "career"},
        [303, 403, 409, 403, 403, 403, 403, 404, 401],
    ),
    (
        "/programs/{program}/requests/{request}",
        {"decision": "accept"},
        [403, 303, 403, 404, 403, 403, 403, 404, 401],
    ),
    ("/programs/{program}/goals/{goal}/agree", {}, [403, 303, 404, 404, 404, 404, 404, 404, 401]),
    (
        "/programs/{program}/goals/{goal}/checkins",
        {"progress": "40", "note": "Draft done"},
        [303, 303, 404, 404, 404, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/goals/{goal}/edit",
        {"title": "Submit two abstracts", "measure": "Two submitted", "target_date": IN_A_MONTH},
        [303, 403, 404, 404, 404, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/goals/{goal}/drop",
        {"drop_note": "Plans changed"},
        [303, 403, 404, 404, 404, 404, 404, 404, 401],
    ),
    (
        "/programs/{program}/goals",
        {"scope": "r{rel}", "title": "x", "measure": "y", "target_date": IN_A_MONTH},
        [303, 403, 400, 403, 403, 403, 403, 404, 401],
    ),
    (
        "/programs/{program}/withdraw",
        {"confirm": "yes"},
        [303, 303, 303, 303, 403, 403, 403, 404, 401],
    ),
    (
        "/programs/{program}/privacy/deletion",
        {"confirm": "yes"},
        [200, 200, 200, 200, 403, 403, 403, 404, 401],
    ),
    ("/programs/{program}/profile", mentee_form(), [303, 400, 303, 400, 400, 303, 303, 404, 401]),
    (
        "/programs/{program}/notifications/read",
        {"id": ["{notification}"]},
        [303, 303, 303, 303, 403, 403, 403, 404, 401],
    ),
    (
        "/programs/{program}/rematch/{closed}",
        {"mentor_id": "{other_mentor}"},
        [303, 403, 404, 403, 403, 403, 403, 404, 401],
    ),
    (
        "/courses/{course}/programs",
        {"title": "Second program", "tracks": ["career"]},
        [403, 303, 403, 303, 303, 403, 403, 403, 401],
    ),
]
#: What the completeness test reads: (method, path) of every row.
COVERED = [("GET", page) for page, _ in GET_MATRIX] + [
    ("POST", action) for action, _, _ in POST_MATRIX
]


@pytest.mark.parametrize(("page", "expected"), GET_MATRIX, ids=[p for p, _ in GET_MATRIX])
def test_who_may_open_each_participant_page(
    app: Flask, session: Session, world: World, page: str, expected: list[int]
) -> None:
    assert statuses(app, session, world, "GET", page) == per_persona(expected)


@pytest.mark.parametrize(
    ("action", "form", "expected"), POST_MATRIX, ids=[a for a, _, _ in POST_MATRIX]
)
def test_who_may_take_each_participant_action(
    app: Flask,
    session: Session,
    world: World,
    action: str,
    form: dict[str, Any],
    expected: list[int],
) -> None:
    assert statuses(app, session, world, "POST", action, form) == per_persona(expected)


#: The answer to a form naming an object of program B (nothing is written either way).
FOREIGN_IN_FORM = {
    "/programs/{program}/goals": 400,
    "/programs/{program}/notifications/read": 303,
    "/programs/{program}/rematch/{closed}": 400,
}


def test_another_programs_objects_in_this_programs_requests_are_refused(
    app: Flask, session: Session, world: World
) -> None:
    """Program A's people put one of program B's ids at a time into the requests program A
    lets them make: in the path it is not found, in the form it changes nothing (a goal
    shared with B's relationship, B's mentor for a re-match: 400; B's notification: ignored)."""
    variants = foreign_variants(GET_MATRIX, POST_MATRIX)
    got = check_foreign_ids(app, session, world, variants)
    expected = {
        f"{method} {path} with {foreign} of B": dict.fromkeys(
            allowed, 404 if f"{{{foreign}}}" in path else FOREIGN_IN_FORM[path]
        )
        for method, path, _, foreign, allowed in variants
    }
    assert got == expected


def test_dismissing_someone_elses_notification_changes_nothing(
    app: Flask, session: Session, world: World
) -> None:
    """Everyone enrolled may dismiss their own notifications; another's id is ignored."""
    path = fill("/programs/{program}/notifications/read", world.ids)
    form = {"id": [str(world.ids["notification"])]}
    others = {who: world.people[who] for who in ("mentor", "other_mentee", "other_mentor")}
    got = run_matrix(app, session, others, "POST", path, form, writes_nothing=True)
    assert got == dict.fromkeys(others, 303)
    mentee = world.people["mentee"]
    assert mentee is not None
    assert mentee.post(path, form).status_code == 303
    read_at = session.scalar(
        select(Notification.read_at).where(Notification.id == world.ids["notification"])
    )
    assert read_at is not None


#: What a mentee who withdrew still opens: their own data, nothing of their former
#: relationships (withdrawing closed them) or of the program's people.
AFTER_WITHDRAWING = {
    "/programs/{program}/privacy": 200,
    "/programs/{program}/my-data.json": 200,
    "/programs/{program}/goals/{goal}": 404,
    "/programs/{program}/people/{mentor}": 404,
    "/programs/{program}/rematch/{closed}": 403,
    "/programs/{program}/meetings/{meeting}": 404,
    "/programs/{program}/meetings/{meeting}/feedback": 404,
    "/programs/{program}/relationships/{rel}/meetings/new": 404,
    "/programs/{program}/relationships/{rel}/health": 404,
    "/programs/{program}/relationships/{closed}/evaluation": 404,
    "/programs/{program}/circles/{circle}/meetings/new": 404,
    "/programs/{program}/book": 404,
    "/programs/{program}/notifications/preferences": 403,
}


def test_a_mentee_who_withdrew_keeps_only_their_own_data(
    app: Flask, session: Session, world: World
) -> None:
    mentee = {"mentee": world.people["mentee"]}
    withdraw = fill("/programs/{program}/withdraw", world.ids)
    assert send(app, mentee["mentee"], "POST", withdraw, {"confirm": "yes"}).status_code == 303
    got = {
        page: run_matrix(app, session, mentee, "GET", fill(page, world.ids))["mentee"]
        for page in AFTER_WITHDRAWING
    }
    assert got == AFTER_WITHDRAWING


def test_private_preferences_never_reach_a_partners_page(world: World) -> None:
    for viewer, subject in (("mentor", "mentee"), ("mentee", "mentor")):
        person = world.people[viewer]
        assert person is not None
        page = person.get(f"/programs/{world.ids['program']}/people/{world.ids[subject]}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "background" not in html.lower()
        assert "LGBTQ" not in html
        assert "veteran" not in html.lower()


def test_my_data_holds_my_private_preferences_and_not_my_partners(world: World) -> None:
    mentee = world.people["mentee"]
    assert mentee is not None
    data = mentee.get(f"/programs/{world.ids['program']}/my-data.json").get_json()
    assert data["profile"]["private_preferences"]["seek"] == ["background.lgbtq"]
    assert "veteran" not in str(data)
    assert "Submit an abstract" in [goal["title"] for goal in data["goals"]]
    assert "mentee" in [rel["role"] for rel in data["relationships"]]


@pytest.mark.parametrize(
    "action",
    [
        "/profile",
        "/withdraw",
        "/mentors/{other_mentor}/request",
        "/goals/{goal}/agree",
        "/notifications/read",
        "/rematch/{closed}",
    ],
)
def test_a_cross_site_form_post_to_a_participant_page_is_refused(
    session: Session, world: World, action: str
) -> None:
    path = fill(f"/programs/{{program}}{action}", world.ids)
    mentee = world.people["mentee"]
    assert mentee is not None
    form = {"confirm": "yes", "track": "career", "id": [str(world.ids["notification"])]}
    before = database_snapshot(session)
    response = mentee.post(path, form, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert database_snapshot(session) == before


def test_a_cross_site_program_creation_is_refused(session: Session, world: World) -> None:
    coordinator = world.people["coordinator"]
    assert coordinator is not None
    response = coordinator.post(
        f"/courses/{world.ids['course']}/programs",
        {"title": "Planted", "tracks": ["career"]},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert session.scalar(select(Program).where(Program.title == "Planted")) is None


def test_a_facilitator_sees_circle_goals_to_agree_on_their_home(
    session: Session, world: World
) -> None:
    from plugin.models import Circle, CircleMember

    program_id = world.ids["program"]
    circle = Circle(
        program_id=program_id, name="Circle B", facilitator_id=world.ids["other_mentor"]
    )
    session.add(circle)
    session.flush()
    session.add(CircleMember(circle_id=circle.id, participant_id=world.ids["mentee"]))
    session.add(
        Goal(
            program_id=program_id,
            owner_id=world.ids["mentee"],
            circle_id=circle.id,
            title="Circle goal",
        )
    )
    session.commit()
    facilitator = world.people["other_mentor"]
    assert facilitator is not None
    home = facilitator.get(f"/programs/{program_id}/")
    assert "Circle goal" in home.get_data(as_text=True)
