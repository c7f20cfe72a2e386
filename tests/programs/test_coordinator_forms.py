"""Every coordinator form refuses bad input with a message at its field and changes nothing:
pairing, circles and their members, a relationship's status, the bulk actions, match rounds
and their proposals, erasure and the mentor import. One test per form, its cases as params;
each compares a snapshot of every row (audit entries included) before and after."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from plugin.db import utcnow
from plugin.lti.roles import CourseRole
from plugin.models import (
    Circle,
    MatchProposal,
    MatchRound,
    Participant,
    Program,
    Relationship,
    RoundStatus,
    Track,
    User,
)
from plugin.programs import enrollment, goals
from plugin.programs.circles import create_circle
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant, coordinator_pair
from tests.programs.forms import database_snapshot, field_error, page_alert


@dataclass
class Scene:
    """A program with an active pair (and a goal), an empty circle and its coordinator."""

    program: Program
    mentee: Participant
    mentee_user: User
    mentor: Participant
    relationship: Relationship
    circle: Circle
    coordinator: Person
    coordinator_user: User

    def path(self, rest: str) -> str:
        return f"/programs/{self.program.id}/coordinator{rest}"

    def ids(self) -> dict[str, int]:
        return {
            "mentee": self.mentee.id,
            "mentor": self.mentor.id,
            "rel": self.relationship.id,
            "coordinator_user": self.coordinator_user.id,
        }


@pytest.fixture
def scene(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> Scene:
    program = make_program(tenant)
    coordinator_user = make_user(tenant, INSTRUCTOR, name="Casey Coordinator")
    mentee_user = make_user(tenant, LEARNER, name="Mia Mentee")
    mentee = enroll(program, mentee_user, mentee=True)
    mentor = enroll(
        program, make_user(tenant, INSTRUCTOR, name="Max Mentor"), mentor=True, bio="Echo lab"
    )
    relationship = coordinator_pair(session, program, mentee, mentor)
    today = utcnow().date()
    goals.create_goal(
        session,
        owner=mentee,
        scope=f"r{relationship.id}",
        title="Learn echo",
        measure="20 supervised studies",
        target_date=(today + timedelta(days=30)).isoformat(),
        today=today,
    )
    circle = create_circle(
        session,
        program,
        name="Wednesday circle",
        track="",
        facilitator_id=mentor.id,
        actor_user_id=coordinator_user.id,
    )
    return Scene(
        program=program,
        mentee=mentee,
        mentee_user=mentee_user,
        mentor=mentor,
        relationship=relationship,
        circle=circle,
        coordinator=as_person(tenant, coordinator_user, CourseRole.INSTRUCTOR),
        coordinator_user=coordinator_user,
    )


def _filled(scene: Scene, form: dict[str, Any]) -> dict[str, Any]:
    """``form`` with "{mentee}"-style placeholders replaced by the scene's ids."""
    ids = scene.ids()
    return {
        key: [v.format(**ids) for v in value] if isinstance(value, list) else value.format(**ids)
        for key, value in form.items()
    }


def _refused_unchanged(
    session: Session, scene: Scene, url: str, form: dict[str, Any], status: int = 400
) -> str:
    """Post ``form`` to ``url`` (both may hold placeholders); check the status and that no
    row changed; return the page."""
    before = database_snapshot(session)
    path = scene.path(url.format(**scene.ids()))
    response: TestResponse = scene.coordinator.post(path, _filled(scene, form))
    assert response.status_code == status
    assert database_snapshot(session) == before
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"mentor_id": ""}, "mentor_id", "Choose a mentor in this program."),
        ({"mentor_id": "999999"}, "mentor_id", "Choose a mentor in this program."),
        ({"mentor_id": "{mentee}"}, "mentor_id", "cannot mentor themselves"),
        ({"track": "astrology"}, "track", "Choose one of the program's tracks."),
        ({"note": "n" * 2001}, "note", "at most 2000"),
    ],
)
def test_bad_pair_input_is_refused_at_the_field(
    session: Session, scene: Scene, change: dict[str, str], field: str, says: str
) -> None:
    form = {"mentor_id": "{mentor}", "track": "career", "note": "", **change}
    status = 409 if field == "mentor_id" and change["mentor_id"] == "{mentee}" else 400
    html = _refused_unchanged(session, scene, "/people/{mentee}/pair", form, status)
    assert says in field_error(html, field)


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"name": "  "}, "name", "Enter a name for the circle."),
        ({"name": "c" * 201}, "name", "at most 200"),
        ({"track": "astrology"}, "track", "Choose one of the program's tracks"),
        ({"facilitator_id": "x"}, "facilitator_id", "Choose a mentor enrolled"),
        ({"facilitator_id": "{mentee}"}, "facilitator_id", "Choose a mentor enrolled"),
    ],
)
def test_bad_circle_input_is_refused_at_the_field(
    session: Session, scene: Scene, change: dict[str, str], field: str, says: str
) -> None:
    form = {"name": "Friday circle", "track": "", "facilitator_id": "", **change}
    html = _refused_unchanged(session, scene, "/circles", form)
    assert says in field_error(html, field)


@pytest.mark.parametrize(
    ("members", "says"),
    [
        ([], "Choose at least one mentee."),
        (["x"], "Choose mentees from the list."),
        (["{mentor}"], "Choose mentees enrolled in this program."),
        (["{mentee}", "999999"], "Choose mentees enrolled in this program."),
    ],
)
def test_bad_circle_members_are_refused_at_the_field(
    session: Session, scene: Scene, members: list[str], says: str
) -> None:
    url = f"/circles/{scene.circle.id}/members"
    html = _refused_unchanged(session, scene, url, {"members": members})
    assert says in field_error(html, "members")


@pytest.mark.parametrize("who", ["{mentee}", "999999"])
def test_removing_someone_not_in_the_circle_changes_nothing(
    session: Session, scene: Scene, who: str
) -> None:
    _refused_unchanged(session, scene, f"/circles/{scene.circle.id}/members/{who}/remove", {}, 404)


@pytest.mark.parametrize(
    ("form", "field", "says"),
    [
        ({"action": ""}, "action", "Choose pause, resume or close."),
        ({"action": "explode"}, "action", "Choose pause, resume or close."),
        ({"action": "close", "reason": ""}, "reason", "Choose why the relationship ends."),
        ({"action": "close", "reason": "astrology"}, "reason", "Choose why"),
        ({"action": "pause", "note": "n" * 2001}, "note", "at most 2000"),
        ({"action": "resume"}, "action", "Only a paused relationship can be resumed."),
    ],
)
def test_bad_relationship_changes_are_refused_at_the_field(
    session: Session, scene: Scene, form: dict[str, str], field: str, says: str
) -> None:
    status = 409 if form["action"] == "resume" else 400
    html = _refused_unchanged(session, scene, "/relationships/{rel}/status", form, status)
    assert says in field_error(html, field)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"selected": []}, "Select at least one relationship."),
        ({"selected": ["x"]}, "could not be read"),
        ({"selected": ["999999"]}, "not in this program"),
        ({"reason": "astrology"}, "Choose why the relationship ends."),
        ({"note": "n" * 2001}, "at most 2000"),
    ],
)
def test_bad_bulk_closes_are_refused_at_the_field(
    session: Session, scene: Scene, change: dict[str, Any], says: str
) -> None:
    form = {"selected": ["{rel}"], "reason": "completed", "note": "", **change}
    html = _refused_unchanged(session, scene, "/relationships/bulk", form)
    assert says in field_error(html, "bulk")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"action": ""}, "Choose an action"),
        ({"action": "promote"}, "Choose an action"),
        ({"selected": []}, "Select at least one person."),
        ({"selected": ["zzz"]}, "could not be read"),
        ({"selected": ["px"]}, "could not be read"),
        ({"selected": ["u{coordinator_user}"]}, "Only enrolled people can be withdrawn."),
        ({"selected": ["p999999"]}, "not in this program"),
        ({"action": "make_coordinator", "selected": ["u999999"]}, "not in this course"),
    ],
)
def test_bad_bulk_people_actions_are_refused_at_the_field(
    session: Session, scene: Scene, change: dict[str, Any], says: str
) -> None:
    form = {"action": "withdraw", "selected": ["p{mentee}"], **change}
    html = _refused_unchanged(session, scene, "/people/bulk", form)
    assert says in field_error(html, "bulk")


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"objective": "astrology"}, "objective", "Choose one of the objectives listed."),
        ({"interests": "lots"}, "interests", "Enter a number"),
        ({"track": "-1"}, "track", "from 0 to 100"),
        ({"availability": "nan"}, "availability", "from 0 to 100"),
        ({"ideal_stage_gap": "1.5"}, "ideal_stage_gap", "Enter a number"),
    ],
)
def test_bad_round_settings_are_refused_at_the_field(
    session: Session, scene: Scene, change: dict[str, str], field: str, says: str
) -> None:
    html = _refused_unchanged(session, scene, "/rounds", {"objective": "max_matched", **change})
    assert says in field_error(html, field)


@pytest.mark.parametrize("action", ["", "explode"])
def test_an_unknown_proposal_action_is_refused_with_a_message(
    session: Session, scene: Scene, action: str
) -> None:
    round_ = MatchRound(program_id=scene.program.id, status=RoundStatus.READY)
    round_.proposals.append(
        MatchProposal(mentee_id=scene.mentee.id, mentor_id=scene.mentor.id, track=Track.CAREER)
    )
    session.add(round_)
    session.flush()
    url = f"/rounds/{round_.id}/proposals/{round_.proposals[0].id}"
    html = _refused_unchanged(session, scene, url, {"action": action})
    assert "Choose lock, reject, never pair or reset." in page_alert(html)


@pytest.mark.parametrize("form", [{}, {"confirm": "no"}])
def test_an_erasure_without_its_confirmation_is_refused_at_the_box(
    session: Session, scene: Scene, form: dict[str, str]
) -> None:
    enrollment.request_deletion(session, scene.mentee, actor_user_id=scene.mentee_user.id)
    html = _refused_unchanged(session, scene, "/people/{mentee}/erase", form)
    assert "Tick the box" in field_error(html, f"confirm-{scene.mentee.id}")


HEADER = "name,email,tracks,capacity\n"


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"csv_text": "  "}, "Choose a CSV file or paste its contents."),
        ({"csv_text": HEADER + "x" * (256 * 1024)}, "too large"),
        ({"file": b"\xff\xfename\n"}, "UTF-8"),
        ({"csv_text": "Ada,ada@alumni.example.org,research,2\n"}, "Fix the lines below"),
        ({"csv_text": HEADER + "Ada,ada@alumni.example.org,astrology,2\n"}, "Fix the lines"),
        ({"csv_text": HEADER + "Ada,not-an-email,research,2\n"}, "Fix the lines below"),
        ({"csv_text": HEADER + "Ada,ada@alumni.example.org,research,99\n"}, "Fix the lines"),
    ],
)
def test_a_bad_import_is_refused_at_the_field(
    session: Session, scene: Scene, form: dict[str, Any], says: str
) -> None:
    data: dict[str, Any] = {
        key: (io.BytesIO(value), "mentors.csv") if isinstance(value, bytes) else value
        for key, value in form.items()
    }
    before = database_snapshot(session)
    response = scene.coordinator.post(
        scene.path("/import"), data, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert says in field_error(response.get_data(as_text=True), "file")
    assert database_snapshot(session) == before
