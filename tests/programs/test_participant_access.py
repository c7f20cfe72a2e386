"""The authorization matrix of the participant pages: each role, each page and action, own
data and someone else's, this program and another course's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.roles import CourseRole
from plugin.models import (
    Goal,
    GoalUpdate,
    Participant,
    Program,
    Relationship,
    RelationshipOrigin,
    Track,
    User,
)
from plugin.programs.relationships import propose_relationship
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant


@dataclass
class World:
    program: Program
    people: dict[str, Person]
    ids: dict[str, int]


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


@pytest.fixture
def world(
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> World:
    home, elsewhere = make_tenant(), make_tenant()
    program = make_program(home)
    users = {
        "mentee": make_user(home, LEARNER),
        "mentor": make_user(home, INSTRUCTOR),
        "other_mentee": make_user(home, LEARNER),
        "other_mentor": make_user(home, INSTRUCTOR),
        "coordinator": make_user(home, INSTRUCTOR),
        "learner": make_user(home, LEARNER),
    }
    mentee = enroll(program, users["mentee"], mentee=True, bio="")
    mentor = enroll(program, users["mentor"], mentor=True, bio="Mentor bio")
    other_mentee = enroll(program, users["other_mentee"], mentee=True)
    other_mentor = enroll(program, users["other_mentor"], mentor=True, bio="Other bio")
    mentee.profile.private_preferences = '{"seek": ["background.lgbtq"], "identify_as": []}'  # type: ignore[union-attr]
    mentor.profile.private_preferences = '{"seek": [], "identify_as": ["background.veteran"]}'  # type: ignore[union-attr]
    mine = _pair(session, program, mentee, mentor, active=True)
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
    my_goal, their_goal = _goal(session, program, mine), _goal(session, program, theirs)
    roles = {
        "mentee": CourseRole.LEARNER,
        "mentor": CourseRole.INSTRUCTOR,
        "other_mentee": CourseRole.LEARNER,
        "other_mentor": CourseRole.INSTRUCTOR,
        "coordinator": CourseRole.INSTRUCTOR,
        "learner": CourseRole.LEARNER,
    }
    people = {name: as_person(home, users[name], roles[name]) for name in users}
    stranger = make_user(elsewhere, INSTRUCTOR)
    people["other_course"] = as_person(elsewhere, stranger, CourseRole.INSTRUCTOR)
    session.commit()
    return World(
        program=program,
        people=people,
        ids={
            "mentee": mentee.id,
            "mentor": mentor.id,
            "other_mentee": other_mentee.id,
            "other_mentor": other_mentor.id,
            "goal": my_goal.id,
            "their_goal": their_goal.id,
            "request": request.id,
        },
    )


PERSONAS = [
    "mentee",
    "mentor",
    "other_mentee",
    "other_mentor",
    "coordinator",
    "learner",
    "other_course",
]

#: (page, expected status per persona in PERSONAS order).
GET_MATRIX = [
    ("/", [200, 200, 200, 200, 200, 200, 404]),
    ("/profile", [200, 200, 200, 200, 200, 200, 404]),
    ("/mentors", [200, 403, 200, 403, 403, 403, 404]),
    ("/people/{mentor}", [200, 200, 200, 404, 404, 404, 404]),
    ("/people/{mentee}", [200, 200, 404, 404, 404, 404, 404]),
    ("/people/{other_mentee}", [404, 200, 200, 200, 404, 404, 404]),
    ("/goals/new", [200, 403, 200, 403, 403, 403, 404]),
    ("/goals/{goal}", [200, 200, 404, 404, 404, 404, 404]),
    ("/goals/{their_goal}", [404, 404, 200, 200, 404, 404, 404]),
    ("/privacy", [200, 200, 200, 200, 403, 403, 404]),
    ("/my-data.json", [200, 200, 200, 200, 403, 403, 404]),
]


@pytest.mark.parametrize(("page", "expected"), GET_MATRIX)
def test_who_may_open_each_participant_page(world: World, page: str, expected: list[int]) -> None:
    path = f"/programs/{world.program.id}{page.format(**world.ids)}"
    got = [world.people[name].get(path).status_code for name in PERSONAS]
    assert dict(zip(PERSONAS, got, strict=True)) == dict(zip(PERSONAS, expected, strict=True))


#: (action, form, expected status per persona); each runs on a fresh world.
POST_MATRIX = [
    ("/mentors/{other_mentor}/request", {"track": "career"}, [303, 403, 409, 403, 403, 403, 404]),
    ("/requests/{request}", {"decision": "accept"}, [403, 303, 403, 404, 403, 403, 404]),
    ("/goals/{goal}/agree", {}, [403, 303, 404, 404, 404, 404, 404]),
    (
        "/goals/{goal}/checkins",
        {"progress": "40", "note": "Draft done"},
        [303, 303, 404, 404, 404, 404, 404],
    ),
    ("/goals", {"scope": "r1", "title": "x", "measure": "y"}, [400, 403, 400, 403, 403, 403, 404]),
    ("/withdraw", {"confirm": "yes"}, [303, 303, 303, 303, 403, 403, 404]),
    ("/privacy/deletion", {"confirm": "yes"}, [200, 200, 200, 200, 403, 403, 404]),
]


@pytest.mark.parametrize(("action", "form", "expected"), POST_MATRIX)
@pytest.mark.parametrize("persona", PERSONAS)
def test_who_may_take_each_participant_action(
    world: World, action: str, form: dict[str, str], expected: list[int], persona: str
) -> None:
    path = f"/programs/{world.program.id}{action.format(**world.ids)}"
    response = world.people[persona].post(path, form)
    assert response.status_code == expected[PERSONAS.index(persona)]


def test_private_preferences_never_reach_a_partners_page(world: World) -> None:
    for viewer, subject in (("mentor", "mentee"), ("mentee", "mentor")):
        page = world.people[viewer].get(f"/programs/{world.program.id}/people/{world.ids[subject]}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "background" not in html.lower()
        assert "LGBTQ" not in html
        assert "veteran" not in html.lower()


def test_my_data_holds_my_private_preferences_and_not_my_partners(world: World) -> None:
    data = world.people["mentee"].get(f"/programs/{world.program.id}/my-data.json").get_json()
    assert data["profile"]["private_preferences"]["seek"] == ["background.lgbtq"]
    assert "veteran" not in str(data)
    assert data["goals"][0]["title"] == "Submit an abstract"
    assert data["relationships"][0]["role"] == "mentee"


@pytest.mark.parametrize(
    "action", ["/profile", "/withdraw", "/mentors/{other_mentor}/request", "/goals/{goal}/agree"]
)
def test_a_cross_site_form_post_to_a_participant_page_is_refused(world: World, action: str) -> None:
    path = f"/programs/{world.program.id}{action.format(**world.ids)}"
    response = world.people["mentee"].post(
        path, {"confirm": "yes", "track": "career"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403


def test_a_facilitator_sees_circle_goals_to_agree_on_their_home(
    session: Session, world: World
) -> None:
    from plugin.models import Circle, CircleMember

    circle = Circle(
        program_id=world.program.id, name="Peer circle", facilitator_id=world.ids["other_mentor"]
    )
    session.add(circle)
    session.flush()
    session.add(CircleMember(circle_id=circle.id, participant_id=world.ids["mentee"]))
    session.add(
        Goal(
            program_id=world.program.id,
            owner_id=world.ids["mentee"],
            circle_id=circle.id,
            title="Circle goal",
        )
    )
    session.commit()
    home = world.people["other_mentor"].get(f"/programs/{world.program.id}/")
    assert "Circle goal" in home.get_data(as_text=True)
