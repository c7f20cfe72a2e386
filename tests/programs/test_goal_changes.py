"""Goals that evolve: the mentee who wrote a goal changes it or drops it, through the goal's
page; an agreed goal whose measure or date changes waits for agreement again; finished goals
are read-only; only the owner acts, and bad input changes nothing."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.followups.planner import reconcile
from plugin.lti.roles import CourseRole
from plugin.models import (
    Circle,
    CircleMember,
    FollowUp,
    FollowUpKind,
    FollowUpState,
    Goal,
    GoalStatus,
    Notification,
    Participant,
    Program,
    Relationship,
    RelationshipStatus,
    Track,
    User,
)
from plugin.programs.errors import NotAllowed, StateConflict
from plugin.programs.goal_changes import drop_goal, edit_goal
from plugin.programs.goals import add_checkin, agree_goal, create_goal
from plugin.programs.program_stats import goal_summary
from tests.programs.conftest import INSTRUCTOR, LEARNER, Person, Tenant
from tests.programs.forms import database_snapshot, field_error


def _in(days: int) -> str:
    return (utcnow() + timedelta(days=days)).date().isoformat()


def _text(page: str) -> str:
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


@dataclass
class World:
    program: Program
    mentee: Participant
    mentor: Participant
    relationship: Relationship
    goal: Goal
    people: dict[str, Person]

    def path(self, rest: str = "") -> str:
        return f"/programs/{self.program.id}/goals/{self.goal.id}{rest}"

    def form(self, **changes: str) -> dict[str, str]:
        """The edit form as the page fills it, with ``changes``."""
        assert self.goal.target_date is not None
        values = {
            "title": self.goal.title,
            "measure": self.goal.measure,
            "target_date": self.goal.target_date.isoformat(),
        }
        values.update(changes)
        return values


@pytest.fixture
def world(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
    as_person: Callable[..., Person],
) -> World:
    program = make_program(tenant)
    users = {
        "mentee": make_user(tenant, LEARNER, name="Mia Mentee"),
        "mentor": make_user(tenant, INSTRUCTOR, name="Dr Max Mentor"),
        "other mentee": make_user(tenant, LEARNER),
        "coordinator": make_user(tenant, INSTRUCTOR),
    }
    mentee = enroll(program, users["mentee"], mentee=True)
    mentor = enroll(program, users["mentor"], mentor=True)
    enroll(program, users["other mentee"], mentee=True)
    enroll(program, users["coordinator"], coordinator=True)
    relationship = Relationship(
        program_id=program.id,
        mentee_id=mentee.id,
        mentor_id=mentor.id,
        track="research",
        status=RelationshipStatus.ACTIVE,
    )
    session.add(relationship)
    session.flush()
    goal = create_goal(
        session,
        owner=mentee,
        scope=f"r{relationship.id}",
        title="Submit an abstract",
        measure="Abstract submitted",
        target_date=_in(90),
        today=utcnow().date(),
    )
    session.commit()
    roles = {
        "mentee": CourseRole.LEARNER,
        "mentor": CourseRole.INSTRUCTOR,
        "other mentee": CourseRole.LEARNER,
        "coordinator": CourseRole.INSTRUCTOR,
    }
    people = {name: as_person(tenant, user, roles[name]) for name, user in users.items()}
    return World(program, mentee, mentor, relationship, goal, people)


def _agree(session: Session, world: World) -> None:
    agree_goal(session, world.goal, actor=world.mentor)
    session.commit()


def _notices(session: Session, participant: Participant, kind: str) -> list[str]:
    return list(
        session.scalars(
            select(Notification.text).where(
                Notification.recipient_id == participant.id, Notification.kind == kind
            )
        )
    )


def test_rewording_an_agreed_goal_keeps_the_agreement_and_records_before_and_after(
    session: Session, world: World
) -> None:
    _agree(session, world)
    response = world.people["mentee"].post(
        world.path("/edit"), world.form(title="Submit two abstracts")
    )
    assert response.status_code == 303
    session.refresh(world.goal)
    assert world.goal.title == "Submit two abstracts"
    assert world.goal.status == GoalStatus.AGREED
    assert world.goal.agreed_by_id == world.mentor.id
    edit = world.goal.updates[-1]
    assert (edit.kind, edit.author_id, edit.status) == ("edited", world.mentee.id, "agreed")
    assert edit.changes == {"title": ["Submit an abstract", "Submit two abstracts"]}
    assert _notices(session, world.mentor, "goal.edited") == [
        "Mia Mentee changed the goal “Submit two abstracts”"
    ]
    page = _text(world.people["mentor"].get(world.path()).get_data(as_text=True))
    assert "Mia Mentee changed the goal" in page
    assert "What from Submit an abstract to Submit two abstracts" in page


@pytest.mark.parametrize(
    ("field", "value"), [("measure", "Abstract accepted"), ("target_date", _in(120))]
)
def test_changing_what_was_agreed_sends_the_goal_back_for_agreement(
    session: Session, world: World, field: str, value: str
) -> None:
    _agree(session, world)
    before = getattr(world.goal, field)
    response = world.people["mentee"].post(world.path("/edit"), world.form(**{field: value}))
    assert response.status_code == 303
    session.refresh(world.goal)
    assert world.goal.status == GoalStatus.PROPOSED
    assert (world.goal.agreed_by_id, world.goal.agreed_at) == (None, None)
    edit = world.goal.updates[-1]
    assert edit.status == "proposed"
    assert edit.changes == {field: [str(before), value]}
    assert "waits to be agreed again" in edit.note
    assert _notices(session, world.mentor, "goal.edited") == [
        "Mia Mentee changed the goal “Submit an abstract”; it waits to be agreed again"
    ]
    # The mentor agrees to the new version from the goal's page.
    page = world.people["mentor"].get(world.path()).get_data(as_text=True)
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version is not None
    again = world.people["mentor"].post(world.path("/agree"), {"version": version[1]})
    assert again.status_code == 303
    agreed = session.get(Goal, world.goal.id, populate_existing=True)
    assert agreed is not None
    assert agreed.status == GoalStatus.AGREED
    assert [u.kind for u in agreed.updates] == ["created", "agreed", "edited", "agreed"]


def test_a_proposed_goal_stays_proposed_when_changed(session: Session, world: World) -> None:
    response = world.people["mentee"].post(
        world.path("/edit"), world.form(measure="Accepted", target_date=_in(60))
    )
    assert response.status_code == 303
    session.refresh(world.goal)
    assert world.goal.status == GoalStatus.PROPOSED
    assert world.goal.updates[-1].note == ""
    assert set(world.goal.updates[-1].changes) == {"measure", "target_date"}


def test_an_edit_that_changes_nothing_writes_nothing(session: Session, world: World) -> None:
    before = database_snapshot(session)
    form = world.form(title="  Submit an abstract ")  # the same text, padded
    assert world.people["mentee"].post(world.path("/edit"), form).status_code == 303
    assert database_snapshot(session) == before


def test_an_agreement_to_a_version_the_mentor_did_not_see_is_refused(
    session: Session, world: World
) -> None:
    page = world.people["mentor"].get(world.path()).get_data(as_text=True)
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version is not None
    world.people["mentee"].post(world.path("/edit"), world.form(measure="Abstract accepted"))
    stale = world.people["mentor"].post(world.path("/agree"), {"version": version[1]})
    assert stale.status_code == 409
    assert "changed this goal after you opened it" in stale.get_data(as_text=True)
    session.refresh(world.goal)
    assert world.goal.status == GoalStatus.PROPOSED


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"title": ""}, "title", "Say what you want to achieve."),
        ({"title": "t" * 201}, "title", "Use at most 200 characters."),
        ({"measure": "  "}, "measure", "Say how you will know you got there."),
        ({"measure": "m" * 1001}, "measure", "Use at most 1000 characters."),
        ({"target_date": ""}, "target_date", "Enter a target date as YYYY-MM-DD."),
        ({"target_date": "next week"}, "target_date", "Enter a target date as YYYY-MM-DD."),
        ({"target_date": "2001-01-01"}, "target_date", "Choose a target date in the future."),
        ({"target_date": _in(0)}, "target_date", "Choose a target date in the future."),
    ],
)
def test_bad_edits_are_refused_at_the_field_and_change_nothing(
    session: Session, world: World, change: dict[str, str], field: str, says: str
) -> None:
    _agree(session, world)
    before = database_snapshot(session)
    form = world.form(**{"measure": "Abstract accepted", **change})  # needs re-agreement
    response = world.people["mentee"].post(world.path("/edit"), form)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert says in field_error(page, field)
    assert re.search(r"<details open>\s*<summary>Change what", page)  # the form stays open
    assert database_snapshot(session) == before


def test_an_overdue_goal_can_be_reworded_without_a_new_date(session: Session, world: World) -> None:
    assert world.goal.target_date is not None
    later = world.goal.target_date + timedelta(days=10)  # the date has passed
    edit_goal(
        session,
        world.goal,
        actor=world.mentee,
        title="Submit an abstract (late)",
        measure=world.goal.measure,
        target_date=world.goal.target_date.isoformat(),
        today=later,
    )
    assert world.goal.title == "Submit an abstract (late)"


def test_the_owner_drops_a_goal_with_a_note_and_it_becomes_read_only(
    session: Session, world: World
) -> None:
    _agree(session, world)
    add_checkin(session, world.goal, actor=world.mentor, progress="40", note="Draft read")
    session.commit()
    response = world.people["mentee"].post(
        world.path("/drop"), {"drop_note": "The meeting was cancelled this year"}
    )
    assert response.status_code == 303
    session.refresh(world.goal)
    assert world.goal.status == GoalStatus.DROPPED
    assert world.goal.progress == 40
    dropped = world.goal.updates[-1]
    assert (dropped.kind, dropped.status, dropped.progress) == ("dropped", "dropped", 40)
    assert dropped.note == "The meeting was cancelled this year"
    assert _notices(session, world.mentor, "goal.dropped") == [
        "Mia Mentee dropped the goal “Submit an abstract”"
    ]
    page = world.people["mentee"].get(world.path()).get_data(as_text=True)
    assert "This goal was dropped" in page
    assert "The meeting was cancelled this year" in page
    for form_action in ("/edit", "/drop", "/checkins"):
        assert f'{world.path(form_action)}"' not in page
    # Nothing changes a dropped goal any more, whoever asks.
    before = database_snapshot(session)
    for who, action, form in (
        ("mentee", "/edit", world.form(title="Revived")),
        ("mentee", "/drop", {}),
        ("mentee", "/checkins", {"progress": "50", "note": "more"}),
        ("mentor", "/checkins", {"progress": "50", "note": "more"}),
    ):
        assert world.people[who].post(world.path(action), form).status_code == 409
    assert database_snapshot(session) == before


def test_dropping_without_a_note_is_fine_and_a_long_note_changes_nothing(
    session: Session, world: World
) -> None:
    before = database_snapshot(session)
    response = world.people["mentee"].post(world.path("/drop"), {"drop_note": "n" * 2001})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Use at most 2000 characters." in field_error(page, "drop_note")
    assert re.search(r"<details open>\s*<summary>Drop this goal", page)
    assert database_snapshot(session) == before
    assert world.people["mentee"].post(world.path("/drop"), {}).status_code == 303
    session.refresh(world.goal)
    assert world.goal.status == GoalStatus.DROPPED
    assert world.goal.updates[-1].note == ""


def test_an_achieved_goal_is_read_only_too(session: Session, world: World) -> None:
    _agree(session, world)
    done = world.people["mentor"].post(
        world.path("/checkins"), {"progress": "100", "note": "Submitted"}
    )
    assert done.status_code == 303
    session.refresh(world.goal)
    assert world.goal.status == GoalStatus.ACHIEVED
    before = database_snapshot(session)
    assert (
        world.people["mentee"].post(world.path("/edit"), world.form(title="x")).status_code == 409
    )
    assert world.people["mentee"].post(world.path("/drop"), {}).status_code == 409
    assert database_snapshot(session) == before
    assert "This goal was achieved" in world.people["mentee"].get(world.path()).get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    ("who", "status"), [("mentor", 403), ("other mentee", 404), ("coordinator", 404)]
)
@pytest.mark.parametrize("action", ["/edit", "/drop"])
def test_only_the_mentee_who_wrote_the_goal_changes_or_drops_it(
    session: Session, world: World, who: str, status: int, action: str
) -> None:
    before = database_snapshot(session)
    response = world.people[who].post(world.path(action), world.form(title="Mine now"))
    assert response.status_code == status
    assert database_snapshot(session) == before
    if who == "mentor":  # a partner sees the goal, without the forms
        page = world.people[who].get(world.path()).get_data(as_text=True)
        assert "Change or drop this goal" not in page


def test_in_a_circle_only_the_owner_changes_a_goal(
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> None:
    program = make_program(tenant)
    owner, peer = (enroll(program, make_user(tenant, LEARNER), mentee=True) for _ in range(2))
    facilitator = enroll(program, make_user(tenant, INSTRUCTOR), mentor=True)
    circle = Circle(program_id=program.id, name="M3", facilitator_id=facilitator.id)
    session.add(circle)
    session.flush()
    session.add_all([CircleMember(circle_id=circle.id, participant_id=p.id) for p in (owner, peer)])
    session.flush()
    session.refresh(circle)
    goal = create_goal(
        session,
        owner=owner,
        scope=f"c{circle.id}",
        title="Run a journal club",
        measure="Two sessions",
        target_date=_in(60),
        today=utcnow().date(),
    )
    for someone in (peer, facilitator):
        with pytest.raises(NotAllowed):
            edit_goal(
                session,
                goal,
                actor=someone,
                title="x",
                measure="y",
                target_date=_in(30),
                today=utcnow().date(),
            )
        with pytest.raises(NotAllowed):
            drop_goal(session, goal, actor=someone, note="")
    drop_goal(session, goal, actor=owner, note="")
    told = session.scalars(
        select(Notification.recipient_id).where(Notification.kind == "goal.dropped")
    )
    assert sorted(told) == sorted([peer.id, facilitator.id])
    with pytest.raises(StateConflict):
        drop_goal(session, goal, actor=owner, note="")


def test_a_new_date_moves_the_check_in_and_dropping_cancels_it(
    session: Session, world: World
) -> None:
    _agree(session, world)
    reconcile(session, goal_id=world.goal.id)
    session.commit()

    def checkins() -> list[FollowUp]:
        return list(
            session.scalars(
                select(FollowUp)
                .where(FollowUp.kind == FollowUpKind.GOAL_CHECKIN)
                .order_by(FollowUp.id)
                .execution_options(populate_existing=True)
            )
        )

    planned = checkins()
    assert {f.recipient_id for f in planned} == {world.mentee.id, world.mentor.id}
    first_due = {f.id: f.due_at for f in planned}
    new_date = _in(150)
    world.people["mentee"].post(world.path("/edit"), world.form(target_date=new_date))
    moved = checkins()
    assert [f.id for f in moved] == list(first_due)  # the same rows, rescheduled
    for row in moved:
        assert row.state == FollowUpState.PLANNED
        assert row.due_at.date() == date.fromisoformat(new_date) - timedelta(days=7)
    world.people["mentee"].post(world.path("/drop"), {})
    assert {f.state for f in checkins()} == {FollowUpState.CANCELLED}


def test_coordinators_count_dropped_goals_and_leave_them_out_of_progress(
    session: Session, world: World
) -> None:
    world.people["mentee"].post(world.path("/drop"), {"drop_note": "Changed plans"})
    summary = goal_summary(session, world.program.id)
    assert summary.by_status[GoalStatus.DROPPED] == 1
    assert summary.by_track == []
    page = _text(
        world.people["coordinator"]
        .get(f"/programs/{world.program.id}/coordinator/goals")
        .get_data(as_text=True)
    )
    assert "Dropped 1" in page
    assert "Changed plans" not in page  # numbers only


def test_my_data_holds_what_each_edit_changed(session: Session, world: World) -> None:
    world.people["mentee"].post(world.path("/edit"), world.form(title="Submit two abstracts"))
    data = world.people["mentee"].get(f"/programs/{world.program.id}/my-data.json").get_json()
    (goal,) = data["goals"]
    assert goal["history"][-1]["kind"] == "edited"
    assert goal["history"][-1]["changes"] == {
        "title": ["Submit an abstract", "Submit two abstracts"]
    }


@pytest.mark.parametrize("action", ["/edit", "/drop"])
def test_a_cross_site_change_is_refused(session: Session, world: World, action: str) -> None:
    before = database_snapshot(session)
    response = world.people["mentee"].post(
        world.path(action), world.form(title="Hijacked"), headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert database_snapshot(session) == before


def test_a_goal_dropped_after_it_was_chosen_for_a_re_match_stays_behind(
    session: Session, world: World, enroll: Callable[..., Participant]
) -> None:
    from plugin.programs.goals import carry_over_goals

    second = create_goal(
        session,
        owner=world.mentee,
        scope=f"r{world.relationship.id}",
        title="Learn R",
        measure="One analysis",
        target_date=_in(30),
        today=utcnow().date(),
    )
    world.relationship.status = RelationshipStatus.CLOSED
    new_mentor = enroll(world.program, None, mentor=True)
    new = Relationship(
        program_id=world.program.id,
        mentee_id=world.mentee.id,
        mentor_id=new_mentor.id,
        track=Track.RESEARCH,
        status=RelationshipStatus.ACTIVE,
        rematch_of_id=world.relationship.id,
        carry_goal_ids=[world.goal.id, second.id],
    )
    session.add(new)
    session.flush()
    drop_goal(session, world.goal, actor=world.mentee, note="Not any more")
    assert carry_over_goals(session, new, actor_id=None) == 1
    assert (world.goal.relationship_id, second.relationship_id) == (world.relationship.id, new.id)
