"""Rules and planner, with time travel: created when due, not when not, cancelled when
obsolete, rescheduled when moved, idempotent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import time_machine
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.followups.planner import reconcile
from plugin.followups.rules import RuleSet
from plugin.models import (
    CloseReason,
    FollowUpKind,
    FollowUpState,
    Goal,
    GoalStatus,
    ParticipantStatus,
    Relationship,
)
from plugin.programs.relationships import close_relationship, respond_to_request, set_paused
from tests.followups.conftest import MONDAY, Cast, followups, states

StartPair = Callable[..., Relationship]
PLANNED, CANCELLED = FollowUpState.PLANNED, FollowUpState.CANCELLED


# --- introduction -------------------------------------------------------------------------


def test_introduction_to_both_sides_when_the_relationship_becomes_active(
    session: Session, cast: Cast, start_pair: StartPair
) -> None:
    rel = start_pair(activate=False)
    assert followups(session, FollowUpKind.INTRODUCTION) == []  # a request is not a pairing
    respond_to_request(session, rel, accept=True, actor=cast.mentor)
    intros = followups(session, FollowUpKind.INTRODUCTION)
    assert {row.recipient_id for row in intros} == {cast.mentee.id, cast.mentor.id}
    assert all(row.due_at == MONDAY and row.state == PLANNED for row in intros)
    assert {row.refs["partner_id"] for row in intros} == {cast.mentee.id, cast.mentor.id}


def test_declined_request_plans_nothing(
    session: Session, cast: Cast, start_pair: StartPair
) -> None:
    rel = start_pair(activate=False)
    respond_to_request(session, rel, accept=False, actor=cast.mentor)
    assert followups(session) == []


def test_closing_before_the_introduction_went_out_cancels_it(
    session: Session, cast: Cast, start_pair: StartPair
) -> None:
    rel = start_pair()
    close_relationship(session, rel, reason=CloseReason.NOT_WORKING, actor=cast.coordinator)
    rows = followups(session)
    assert rows
    assert states(rows) == [CANCELLED] * len(rows)
    assert all(row.reason.startswith("obsolete") for row in rows)


def test_pause_cancels_and_resume_replans_the_same_rows(
    session: Session, cast: Cast, start_pair: StartPair
) -> None:
    rel = start_pair()
    ids = [row.id for row in followups(session)]
    set_paused(session, rel, paused=True, actor=cast.coordinator)
    assert states(followups(session)) == [CANCELLED] * len(ids)  # intros and health checks
    set_paused(session, rel, paused=False, actor=cast.coordinator)
    rows = followups(session)
    assert [row.id for row in rows] == ids  # revived by key, never duplicated
    assert states(rows) == [PLANNED] * len(ids)


def test_reconcile_is_idempotent(session: Session, cast: Cast, start_pair: StartPair) -> None:
    rel = start_pair()
    before = [(row.id, row.due_at, row.state) for row in followups(session)]
    for _ in range(3):
        report = reconcile(session, relationship_id=rel.id)
        assert (report.created, report.rescheduled, report.cancelled) == (0, 0, 0)
    report = reconcile(session, program_id=cast.program.id)
    assert report.cancelled == 0
    assert [(r.id, r.due_at, r.state) for r in followups(session)][: len(before)] == before


def test_a_withdrawn_recipient_gets_nothing_more(
    session: Session, cast: Cast, start_pair: StartPair
) -> None:
    rel = start_pair()
    cast.mentee.status = ParticipantStatus.WITHDRAWN
    session.flush()
    reconcile(session, relationship_id=rel.id)

    def states_of(participant_id: int) -> set[object]:
        return {row.state for row in followups(session) if row.recipient_id == participant_id}

    assert states_of(cast.mentee.id) == {CANCELLED}
    assert states_of(cast.mentor.id) == {PLANNED}


# --- goal check-ins -----------------------------------------------------------------------


def _goal(session: Session, cast: Cast, rel: Relationship | None, **fields: object) -> Goal:
    goal = Goal(
        program_id=cast.program.id,
        owner_id=cast.mentee.id,
        relationship_id=rel.id if rel else None,
        title="Submit the abstract",
        status=GoalStatus.AGREED,
        **fields,
    )
    session.add(goal)
    session.flush()
    return goal


def test_goal_checkin_seven_days_before_the_target_at_nine_local(
    session: Session, cast: Cast, start_pair: StartPair
) -> None:
    rel = start_pair()
    goal = _goal(session, cast, rel, target_date=date(2026, 4, 15))
    reconcile(session, goal_id=goal.id)
    rows = {row.recipient_id: row for row in followups(session, FollowUpKind.GOAL_CHECKIN)}
    assert set(rows) == {cast.mentee.id, cast.mentor.id}
    # 8 April, 09:00 in New York (EDT, UTC-4) and in London (BST, UTC+1).
    assert rows[cast.mentee.id].due_at == datetime(2026, 4, 8, 13, 0, tzinfo=UTC)
    assert rows[cast.mentor.id].due_at == datetime(2026, 4, 8, 8, 0, tzinfo=UTC)


def test_no_goal_checkin_without_a_date_or_for_a_finished_goal(
    session: Session, cast: Cast
) -> None:
    undated = _goal(session, cast, None)
    done = _goal(session, cast, None, target_date=date(2026, 4, 15))
    done.status = GoalStatus.ACHIEVED
    past = _goal(session, cast, None, target_date=date(2026, 2, 1))
    for goal in (undated, done, past):
        reconcile(session, goal_id=goal.id)
    assert followups(session, FollowUpKind.GOAL_CHECKIN) == []


def test_moving_a_goal_date_reschedules_its_one_checkin(session: Session, cast: Cast) -> None:
    goal = _goal(session, cast, None, target_date=date(2026, 4, 15))
    reconcile(session, goal_id=goal.id)
    (first,) = followups(session, FollowUpKind.GOAL_CHECKIN)
    goal.target_date = date(2026, 5, 20)
    report = reconcile(session, goal_id=goal.id)
    assert (report.created, report.rescheduled) == (0, 1)
    (moved,) = followups(session, FollowUpKind.GOAL_CHECKIN)
    assert moved.id == first.id
    assert moved.due_at == datetime(2026, 5, 13, 13, 0, tzinfo=UTC)


def test_achieving_a_goal_cancels_its_checkin(session: Session, cast: Cast) -> None:
    goal = _goal(session, cast, None, target_date=date(2026, 4, 15))
    reconcile(session, goal_id=goal.id)
    goal.status = GoalStatus.ACHIEVED
    reconcile(session, goal_id=goal.id)
    assert states(followups(session, FollowUpKind.GOAL_CHECKIN)) == [CANCELLED]


# --- meeting-dependent nudges and escalation ----------------------------------------------


def test_without_a_meeting_lookup_nobody_is_told_they_have_not_met(
    session: Session, cast: Cast, start_pair: StartPair
) -> None:
    rel = start_pair()
    reconcile(session, relationship_id=rel.id, rules=RuleSet())
    for kind in (FollowUpKind.NO_MEETING_NUDGE, FollowUpKind.ESCALATION):
        assert [row for row in followups(session, kind) if row.state == PLANNED] == []


def test_a_scheduled_or_held_meeting_of_the_pair_is_what_nudges_count_from(
    session: Session, cast: Cast, start_pair: StartPair
) -> None:
    """The default rules read the meetings: a meeting in the diary stops "you have not met"."""
    from plugin.meetings.history import last_meeting_at
    from plugin.models import MeetingStatus
    from tests.programs.conftest import add_meeting

    rel = start_pair()
    assert last_meeting_at(session, rel) is None
    planned = [r for r in followups(session, FollowUpKind.NO_MEETING_NUDGE) if r.state == PLANNED]
    assert planned  # the default rule set knows there was no meeting
    when = MONDAY + timedelta(days=5)
    for status, counts in ((MeetingStatus.CANCELLED, False), (MeetingStatus.SCHEDULED, True)):
        add_meeting(session, rel, when, status)
        assert (last_meeting_at(session, rel) == when) is counts


def test_nudges_stop_at_the_cap_then_escalate_once_to_the_coordinator(
    session: Session, cast: Cast, start_pair: StartPair
) -> None:
    rel = start_pair()
    rules = RuleSet(last_meeting_at=lambda _session, _rel: None)
    reconcile(session, relationship_id=rel.id, rules=rules)
    nudges = followups(session, FollowUpKind.NO_MEETING_NUDGE)
    # Default cap 2: day 14 and day 21, to both sides; never a third.
    assert sorted({row.due_at for row in nudges}) == [
        MONDAY + timedelta(days=14),
        MONDAY + timedelta(days=21),
    ]
    assert len(nudges) == 4
    (escalation,) = followups(session, FollowUpKind.ESCALATION)
    assert escalation.recipient_id == cast.coordinator.id
    assert escalation.due_at == MONDAY + timedelta(days=28)
    # A year later, still nothing more is planned: the series is finite.
    reconcile(session, relationship_id=rel.id, rules=rules, now=MONDAY + timedelta(days=365))
    assert len(followups(session, FollowUpKind.NO_MEETING_NUDGE)) == 4
    assert len(followups(session, FollowUpKind.ESCALATION)) == 1


def test_a_meeting_cancels_the_old_series_and_anchors_a_new_one(
    session: Session, cast: Cast, start_pair: StartPair
) -> None:
    rel = start_pair()
    meetings: dict[int, datetime] = {}
    rules = RuleSet(last_meeting_at=lambda _session, r: meetings.get(r.id))
    reconcile(session, relationship_id=rel.id, rules=rules)
    met = MONDAY + timedelta(days=10)
    meetings[rel.id] = met
    report = reconcile(session, relationship_id=rel.id, rules=rules, now=met)
    assert report.cancelled == 5  # four nudges and the escalation of the "never met" series
    live = [
        row
        for row in followups(session)
        if row.state == PLANNED and row.kind == FollowUpKind.NO_MEETING_NUDGE
    ]
    # "No meeting for N days": the program's cadence (30 days) after that meeting.
    assert min(row.due_at for row in live) == met + timedelta(days=30)
    assert all(row.refs["met"] for row in live)


# --- health check and digest --------------------------------------------------------------


def test_health_check_each_period_and_superseded_when_missed(
    session: Session, cast: Cast, start_pair: StartPair, clock: time_machine.Traveller
) -> None:
    rel = start_pair()
    first = followups(session, FollowUpKind.HEALTH_CHECK)
    assert {row.due_at for row in first} == {MONDAY + timedelta(days=60)}
    clock.move_to(MONDAY + timedelta(days=61))
    reconcile(session, relationship_id=rel.id)
    due = {row.dedupe_key: row.state for row in followups(session, FollowUpKind.HEALTH_CHECK)}
    assert list(due.values()).count(PLANNED) == 4  # period 1 (due now) and period 2
    clock.move_to(MONDAY + timedelta(days=125))
    reconcile(session, relationship_id=rel.id)
    rows = followups(session, FollowUpKind.HEALTH_CHECK)
    period_one = [row for row in rows if row.refs["period"] == 1]
    assert states(period_one) == [CANCELLED, CANCELLED]  # never sent late, a period over


def test_weekly_digest_to_each_coordinator_at_eight_local_on_monday(
    session: Session, cast: Cast
) -> None:
    reconcile(session, program_id=cast.program.id)
    rows = followups(session, FollowUpKind.COORDINATOR_DIGEST)
    # Today 08:00 Chicago (CST, UTC-6) is 14:00 UTC, an hour ago: still sent; and next week.
    assert [row.due_at for row in rows] == [
        datetime(2026, 3, 2, 14, 0, tzinfo=UTC),
        datetime(2026, 3, 9, 13, 0, tzinfo=UTC),  # after the DST change (CDT, UTC-5)
    ]
    assert {row.recipient_id for row in rows} == {cast.coordinator.id}
    cast.coordinator.status = ParticipantStatus.WITHDRAWN
    session.flush()
    reconcile(session, program_id=cast.program.id)
    assert states(followups(session, FollowUpKind.COORDINATOR_DIGEST)) == [CANCELLED] * 2


def test_archiving_a_program_cancels_everything_planned(
    session: Session, cast: Cast, start_pair: StartPair
) -> None:
    start_pair()
    reconcile(session, program_id=cast.program.id)
    cast.program.archived_at = utcnow()
    session.flush()
    reconcile(session, program_id=cast.program.id)
    assert set(states(followups(session))) == {CANCELLED}


def test_the_coordinators_nudge_settings_are_the_ones_the_planner_uses(
    session: Session, cast: Cast
) -> None:
    from plugin.followups.policy import FollowUpPolicy
    from plugin.programs.settings import followup_settings

    program = cast.program
    # Never saved: the form shows the planner's own defaults.
    shown = followup_settings(program)
    untouched = FollowUpPolicy.of(program)
    assert (shown["nudge_after_days"], shown["nudge_cap"]) == (
        untouched.first_meeting_days,
        untouched.nudge_cap,
    )
    # Saved through the form: both values reach the planner.
    program.followup_settings = {**shown, "nudge_after_days": 5, "nudge_cap": 4}
    session.flush()
    policy = FollowUpPolicy.of(program)
    assert (policy.first_meeting_days, policy.nudge_cap) == (5, 4)
