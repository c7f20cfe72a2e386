"""relationship_signals on hand-made data, at chosen moments: each signal, its level, what
does not raise one, and a query count that does not grow with the program."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta

from sqlalchemy import event
from sqlalchemy.orm import Session

from plugin.insights.signals import (
    Health,
    RelationshipSignals,
    SignalKind,
    relationship_signals,
)
from plugin.meetings.history import last_meeting_at
from plugin.models import (
    FollowUp,
    FollowUpKind,
    FollowUpState,
    Goal,
    GoalStatus,
    GoalUpdate,
    HealthCheck,
    Meeting,
    MeetingFeedback,
    MeetingStatus,
    Relationship,
    RelationshipStatus,
)
from tests.insights.conftest import T0, World

DAY = timedelta(days=1)


def signals_of(
    session: Session, world: World, now: datetime = T0
) -> dict[int, RelationshipSignals]:
    return {s.relationship_id: s for s in relationship_signals(session, world.program, now)}


def kinds(item: RelationshipSignals) -> dict[SignalKind, Health]:
    return {s.kind: s.level for s in item.signals}


def rate(
    session: Session,
    world: World,
    rel: Relationship,
    rating: int,
    *,
    useful: bool = True,
    meeting: Meeting | None = None,
) -> None:
    meeting = meeting or world.add_meeting(rel, T0 - 3 * DAY)
    session.add(
        MeetingFeedback(
            program_id=world.program.id,
            meeting_id=meeting.id,
            relationship_id=rel.id,
            author_id=rel.mentee_id,
            rating=rating,
            useful=useful,
            updated_at=T0 - 2 * DAY,
        )
    )
    session.flush()


def test_a_pair_that_meets_is_good(world: World, session: Session) -> None:
    rel = world.add_pair(started=T0 - 100 * DAY)
    world.add_meeting(rel, T0 - 10 * DAY)
    item = signals_of(session, world)[rel.id]
    assert item.health == Health.GOOD
    assert item.signals == ()
    assert item.last_meeting_at == T0 - 10 * DAY


def test_no_first_meeting_is_watched_then_at_risk(world: World, session: Session) -> None:
    rel = world.add_pair(started=T0 - 10 * DAY)  # first meeting expected within 14 days
    assert signals_of(session, world)[rel.id].health == Health.GOOD
    later = signals_of(session, world, T0 + 5 * DAY)[rel.id]
    assert kinds(later) == {SignalKind.NO_MEETING: Health.WATCH}
    assert "No first meeting 15 days after the start" in later.signals[0].detail
    assert later.signals[0].since == T0 - 10 * DAY + 14 * DAY
    assert signals_of(session, world, T0 + 19 * DAY)[rel.id].health == Health.AT_RISK


def test_the_gap_follows_the_last_held_or_scheduled_meeting(world: World, session: Session) -> None:
    world.program.followup_settings = {"meeting_gap_days": 30}
    rel = world.add_pair(started=T0 - 200 * DAY)
    world.add_meeting(rel, T0 - 40 * DAY)
    world.add_meeting(rel, T0 - 5 * DAY, MeetingStatus.CANCELLED)  # does not count
    item = signals_of(session, world)[rel.id]
    assert kinds(item)[SignalKind.NO_MEETING] == Health.WATCH
    assert item.last_meeting_at == last_meeting_at(session, rel)  # the same rule
    world.add_meeting(rel, T0 + 3 * DAY, MeetingStatus.SCHEDULED)  # one in the diary
    assert SignalKind.NO_MEETING not in kinds(signals_of(session, world)[rel.id])


def test_missed_meetings_in_the_window(world: World, session: Session) -> None:
    rel = world.add_pair(started=T0 - 300 * DAY)
    world.add_meeting(rel, T0 - 2 * DAY)
    world.add_meeting(rel, T0 - 120 * DAY, MeetingStatus.MISSED)  # outside 90 days
    assert SignalKind.MISSED_MEETINGS not in kinds(signals_of(session, world)[rel.id])
    world.add_meeting(rel, T0 - 20 * DAY, MeetingStatus.MISSED)
    assert kinds(signals_of(session, world)[rel.id])[SignalKind.MISSED_MEETINGS] == Health.WATCH
    world.add_meeting(rel, T0 - 10 * DAY, MeetingStatus.MISSED)
    item = signals_of(session, world)[rel.id]
    assert kinds(item)[SignalKind.MISSED_MEETINGS] == Health.AT_RISK
    assert "2 missed meetings in the last 90 days" in [s.detail for s in item.signals]


def test_low_ratings_and_not_useful_meetings(world: World, session: Session) -> None:
    rel = world.add_pair(started=T0 - 30 * DAY)
    rate(session, world, rel, 4)
    assert signals_of(session, world)[rel.id].health == Health.GOOD
    rate(session, world, rel, 2)
    assert kinds(signals_of(session, world)[rel.id]) == {SignalKind.LOW_RATINGS: Health.WATCH}
    rate(session, world, rel, 5, useful=False)
    assert kinds(signals_of(session, world)[rel.id]) == {SignalKind.LOW_RATINGS: Health.AT_RISK}
    # Three months on, they have aged out of the window (and the pair has not met since).
    later = kinds(signals_of(session, world, T0 + 100 * DAY)[rel.id])
    assert SignalKind.LOW_RATINGS not in later


def test_stalled_and_overdue_goals(world: World, session: Session) -> None:
    rel = world.add_pair(started=T0 - 60 * DAY)
    world.add_meeting(rel, T0 - DAY)
    goal = Goal(
        program_id=world.program.id,
        owner_id=rel.mentee_id,
        relationship_id=rel.id,
        title="Submit the abstract",
        status=GoalStatus.AGREED,
        target_date=date(2026, 3, 20),
        created_at=T0 - 45 * DAY,
    )
    done = Goal(
        program_id=world.program.id,
        owner_id=rel.mentee_id,
        relationship_id=rel.id,
        title="Old goal",
        status=GoalStatus.ACHIEVED,
        target_date=date(2026, 1, 1),
        created_at=T0 - 59 * DAY,
    )
    session.add_all([goal, done])
    session.flush()
    assert kinds(signals_of(session, world)[rel.id]) == {SignalKind.STALLED_GOALS: Health.WATCH}
    session.add(GoalUpdate(goal_id=goal.id, kind="checkin", progress=40, at=T0 - 5 * DAY))
    session.flush()
    assert signals_of(session, world)[rel.id].health == Health.GOOD
    # Past its target date (and, by then, without a recent check-in either).
    late = signals_of(session, world, T0 + 18 * DAY)[rel.id]
    assert SignalKind.OVERDUE_GOALS in kinds(late)
    assert "1 goal past the target date" in [s.detail for s in late.signals]


def test_the_latest_health_check_of_each_side_counts(world: World, session: Session) -> None:
    rel = world.add_pair(started=T0 - 130 * DAY)
    world.add_meeting(rel, T0 - DAY)

    def answer(author: int, period: int, score: int) -> None:
        session.add(
            HealthCheck(
                program_id=world.program.id,
                relationship_id=rel.id,
                author_id=author,
                period=period,
                score=score,
            )
        )
        session.flush()

    answer(rel.mentee_id, 1, 1)
    assert kinds(signals_of(session, world)[rel.id]) == {SignalKind.NEGATIVE_HEALTH: Health.AT_RISK}
    answer(rel.mentee_id, 2, 4)  # better since
    assert signals_of(session, world)[rel.id].health == Health.GOOD
    answer(rel.mentor_id, 2, 2)
    assert kinds(signals_of(session, world)[rel.id]) == {SignalKind.NEGATIVE_HEALTH: Health.WATCH}
    # Unanswered since for longer than the window: no longer evidence.
    world.add_meeting(rel, T0 + 99 * DAY)
    assert signals_of(session, world, T0 + 100 * DAY)[rel.id].health == Health.GOOD


def test_an_escalation_lands_in_the_signals(world: World, session: Session) -> None:
    rel = world.add_pair(started=T0 - 20 * DAY)
    world.add_meeting(rel, T0 - 10 * DAY)

    def escalation(key: str, due: object, state: FollowUpState) -> None:
        session.add(
            FollowUp(
                program_id=world.program.id,
                kind=FollowUpKind.ESCALATION,
                recipient_id=world.coordinator.id,
                relationship_id=rel.id,
                due_at=due,
                dedupe_key=key,
                state=state,
            )
        )
        session.flush()

    escalation("escalate:a", T0 - DAY, FollowUpState.CANCELLED)  # a meeting made it obsolete
    escalation("escalate:b", T0 + 5 * DAY, FollowUpState.PLANNED)  # not due yet
    assert signals_of(session, world)[rel.id].health == Health.GOOD
    escalation("escalate:c", T0 - 2 * DAY, FollowUpState.SENT)
    item = signals_of(session, world)[rel.id]
    assert kinds(item) == {SignalKind.ESCALATED: Health.AT_RISK}
    assert item.signals[0].since == T0 - 2 * DAY
    # Once they have a meeting in the diary, the escalation is answered.
    world.add_meeting(rel, T0 + DAY, MeetingStatus.SCHEDULED)
    assert signals_of(session, world)[rel.id].health == Health.GOOD


def test_only_active_relationships_and_worst_first(world: World, session: Session) -> None:
    good = world.add_pair(started=T0 - 5 * DAY)
    watch = world.add_pair(started=T0 - 20 * DAY)
    risk = world.add_pair(started=T0 - 40 * DAY)
    paused = world.add_pair(started=T0 - 90 * DAY, status=RelationshipStatus.PAUSED)
    closed = world.add_pair(started=T0 - 90 * DAY, status=RelationshipStatus.CLOSED)
    order = [s.relationship_id for s in relationship_signals(session, world.program, T0)]
    assert order == [risk.id, watch.id, good.id]
    assert paused.id not in order
    assert closed.id not in order


# --- query count --------------------------------------------------------------------------


@contextmanager
def counting(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    connection = session.connection()

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(connection, "before_cursor_execute", record)


def populate(session: Session, world: World, pairs: int) -> None:
    """``pairs`` relationships with every kind of evidence."""
    for n in range(pairs):
        rel = world.add_pair(started=T0 - (100 + n) * DAY)
        world.add_meeting(rel, T0 - 50 * DAY)
        missed = world.add_meeting(rel, T0 - 20 * DAY, MeetingStatus.MISSED)
        rate(session, world, rel, 1, meeting=missed)
        goal = Goal(
            program_id=world.program.id,
            owner_id=rel.mentee_id,
            relationship_id=rel.id,
            title="Goal",
            status=GoalStatus.AGREED,
            target_date=date(2026, 1, 10),
            created_at=T0 - 90 * DAY,
        )
        session.add(goal)
        session.flush()
        session.add(GoalUpdate(goal_id=goal.id, kind="checkin", progress=10, at=T0 - 60 * DAY))
        session.add(
            HealthCheck(
                program_id=world.program.id,
                relationship_id=rel.id,
                author_id=rel.mentor_id,
                period=1,
                score=2,
            )
        )
        session.add(
            FollowUp(
                program_id=world.program.id,
                kind=FollowUpKind.ESCALATION,
                recipient_id=world.coordinator.id,
                relationship_id=rel.id,
                due_at=T0 - DAY,
                dedupe_key=f"escalate:{rel.id}",
                state=FollowUpState.SENT,
            )
        )
    session.flush()
    session.expire_all()


def test_the_query_count_does_not_grow_with_the_program(world: World, session: Session) -> None:
    populate(session, world, 2)
    with counting(session) as small:
        results = relationship_signals(session, world.program, T0)
    assert len(results) == 2
    assert all(len(r.signals) == 7 for r in results)  # every kind of signal was computed

    populate(session, world, 10)
    with counting(session) as large:
        results = relationship_signals(session, world.program, T0)
    assert len(results) == 12
    assert len(small) > 0
    assert len(large) == len(small)
