"""The planner: make the stored follow-ups match what the rules derive, by dedupe key.

``reconcile`` is idempotent and safe to run concurrently: it creates what is missing
(``INSERT ... ON CONFLICT DO NOTHING`` on the unique key), moves planned rows whose due
time changed, revives cancelled ones a change made relevant again, and cancels planned rows
in its scope that no rule derives any more. Sent, skipped, failed and in-flight rows are
history and are never touched. Services that change state call it in their transaction;
a periodic sweep (``workers.jobs.plan_followups``) catches time-driven changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from plugin.db import utcnow
from plugin.followups.policy import FollowUpPolicy
from plugin.followups.rules import Planned, RuleContext, RuleSet, default_rule_set
from plugin.models import (
    FollowUp,
    FollowUpState,
    Goal,
    GoalStatus,
    Meeting,
    Participant,
    ParticipantStatus,
    Profile,
    Program,
    Relationship,
    RelationshipStatus,
)

__all__ = ["ReconcileReport", "reconcile", "reconcile_all", "still_wanted"]

#: Reasons the dispatcher gives when it moves a row later; the planner keeps such a row's
#: due time unless the rule now asks for an even later one.
_DISPATCHER_HOLDS = ("deferred:", "retrying:")
#: Keys looked up per query (bound parameters stay well under every backend's limit).
_CHUNK = 500


@dataclass(frozen=True)
class ReconcileReport:
    """What one reconcile changed."""

    created: int = 0
    rescheduled: int = 0
    cancelled: int = 0
    unchanged: int = 0

    def __add__(self, other: ReconcileReport) -> ReconcileReport:
        return ReconcileReport(
            self.created + other.created,
            self.rescheduled + other.rescheduled,
            self.cancelled + other.cancelled,
            self.unchanged + other.unchanged,
        )


def _context(
    session: Session,
    program: Program,
    now: datetime,
    rules: RuleSet,
    only: set[int] | None = None,
) -> RuleContext:
    """The rules' view of ``program``; ``only`` limits people to those ids plus the
    coordinators (enough to re-derive one row's scope without loading the whole program)."""
    query = select(Participant).where(
        Participant.program_id == program.id, Participant.status == ParticipantStatus.ACTIVE
    )
    if only is not None:
        query = query.where(Participant.id.in_(only) | Participant.is_coordinator)
    # Rules read roles and time zones only: leave the profiles' JSON columns unloaded.
    loader = selectinload(Participant.profile).load_only(Profile.time_zone)
    people = {p.id: p for p in session.scalars(query.options(loader))}
    lookup = partial(rules.last_meeting_at, session) if rules.last_meeting_at else None
    return RuleContext(
        now=now,
        program=program,
        policy=FollowUpPolicy.of(program),
        people=people,
        last_meeting_at=lookup,
    )


def _derive_relationship(ctx: RuleContext, rel: Relationship, rules: RuleSet) -> Iterable[Planned]:
    for rule in rules.relationship_rules:
        yield from rule(ctx, rel)


def _derive_goal(ctx: RuleContext, goal: Goal, rules: RuleSet) -> Iterable[Planned]:
    for rule in rules.goal_rules:
        yield from rule(ctx, goal)


def _derive_meeting(ctx: RuleContext, meeting: Meeting, rules: RuleSet) -> Iterable[Planned]:
    for rule in rules.meeting_rules:
        yield from rule(ctx, meeting)


def _live_meetings(
    session: Session, where: ColumnElement[bool], now: datetime, program: Program
) -> list[Meeting]:
    """Meetings a meeting rule may still derive something for: not ended longer ago than
    the feedback window (upcoming ones included), attendees loaded."""
    window = timedelta(hours=FollowUpPolicy.of(program).feedback_window_hours)
    return list(
        session.scalars(
            select(Meeting)
            .where(where, Meeting.ends_at > now - window)
            .options(selectinload(Meeting.attendees))
        )
    )


def reconcile(
    session: Session,
    *,
    program_id: int | None = None,
    relationship_id: int | None = None,
    goal_id: int | None = None,
    meeting_id: int | None = None,
    now: datetime | None = None,
    rules: RuleSet | None = None,
) -> ReconcileReport:
    """Bring the follow-ups of one scope (a program, a relationship, a goal or a meeting)
    up to date.

    Give exactly one scope. A relationship's scope includes check-ins of goals shared in it
    and its meetings' reminders and feedback requests; a program's scope is everything in
    the program, including its coordinators' digests.
    """
    scopes = (program_id, relationship_id, goal_id, meeting_id)
    if sum(x is not None for x in scopes) != 1:
        raise TypeError(
            "reconcile() takes exactly one of program_id, relationship_id, goal_id, meeting_id"
        )
    now = now or utcnow()
    rules = rules or default_rule_set()
    open_goals = Goal.status.in_((GoalStatus.PROPOSED, GoalStatus.AGREED))
    scope: ColumnElement[bool]
    derived: list[Planned] = []

    if relationship_id is not None:
        rel = session.get(Relationship, relationship_id)
        if rel is None:
            return ReconcileReport()
        goals = list(
            session.scalars(select(Goal).where(Goal.relationship_id == rel.id, open_goals))
        )
        meetings = _live_meetings(session, Meeting.relationship_id == rel.id, now, rel.program)
        people = {rel.mentee_id, rel.mentor_id} | {g.owner_id for g in goals}
        people |= {a.participant_id for m in meetings for a in m.attendees}
        ctx = _context(session, rel.program, now, rules, people)
        derived.extend(_derive_relationship(ctx, rel, rules))
        for goal in goals:
            derived.extend(_derive_goal(ctx, goal, rules))
        for meeting in meetings:
            derived.extend(_derive_meeting(ctx, meeting, rules))
        scope = FollowUp.relationship_id == rel.id
    elif meeting_id is not None:
        changed = session.get(Meeting, meeting_id)
        if changed is None:
            return ReconcileReport()
        people = {a.participant_id for a in changed.attendees}
        ctx = _context(session, changed.program, now, rules, people)
        derived.extend(_derive_meeting(ctx, changed, rules))
        scope = FollowUp.meeting_id == changed.id
    elif goal_id is not None:
        found = session.get(Goal, goal_id)
        if found is None:
            return ReconcileReport()
        people = {found.owner_id} | ({found.pair.mentor_id} if found.pair else set())
        ctx = _context(session, found.program, now, rules, people)
        derived.extend(_derive_goal(ctx, found, rules))
        scope = FollowUp.goal_id == found.id
    else:
        program = session.get(Program, program_id)
        if program is None:
            return ReconcileReport()
        ctx = _context(session, program, now, rules)
        if program.archived_at is None:
            for rel in session.scalars(
                select(Relationship).where(
                    Relationship.program_id == program.id,
                    Relationship.status != RelationshipStatus.CLOSED,
                )
            ):
                derived.extend(_derive_relationship(ctx, rel, rules))
            for goal in session.scalars(
                select(Goal)
                .where(Goal.program_id == program.id, open_goals)
                .options(selectinload(Goal.pair))
            ):
                derived.extend(_derive_goal(ctx, goal, rules))
            for meeting in _live_meetings(session, Meeting.program_id == program.id, now, program):
                derived.extend(_derive_meeting(ctx, meeting, rules))
            for program_rule in rules.program_rules:
                derived.extend(program_rule(ctx))
        scope = FollowUp.program_id == program.id

    # Only people still active in the program receive anything.
    wanted = {p.key: p for p in derived if p.recipient_id in ctx.people}
    return _apply(session, wanted, scope, now)


def _apply(
    session: Session, wanted: dict[str, Planned], scope: ColumnElement[bool], now: datetime
) -> ReconcileReport:
    stored: dict[str, FollowUp] = {
        row.dedupe_key: row
        for row in session.scalars(
            select(FollowUp).where(
                scope, FollowUp.state.in_((FollowUpState.PLANNED, FollowUpState.CANCELLED))
            )
        )
    }
    # Derived keys may also exist outside the scope or in a final state (already sent).
    missing = [key for key in wanted if key not in stored]
    for start in range(0, len(missing), _CHUNK):
        chunk = missing[start : start + _CHUNK]
        for found in session.scalars(select(FollowUp).where(FollowUp.dedupe_key.in_(chunk))):
            stored[found.dedupe_key] = found

    created = rescheduled = cancelled = unchanged = 0
    inserts: list[dict[str, Any]] = []
    for key, plan in wanted.items():
        row = stored.get(key)
        too_late = not plan.create_late and plan.due_at <= now
        if row is None:
            if not too_late:
                inserts.append(_values(plan))
        elif row.state == FollowUpState.PLANNED:
            target = plan.due_at
            if row.reason.startswith(_DISPATCHER_HOLDS) and row.due_at > target:
                target = row.due_at  # quiet hours, the daily cap or a retry back-off still hold
            if row.due_at != target and too_late:
                # Moved to a time already past (a meeting moved to within 24 h): the
                # message would arrive late, so it is dropped instead of sent at once.
                row.state = FollowUpState.CANCELLED
                row.reason = "obsolete: its time had passed when it was moved"
                cancelled += 1
            elif row.due_at != target:
                row.due_at = target
                row.reason = "rescheduled"
                rescheduled += 1
            else:
                unchanged += 1
        elif row.state == FollowUpState.CANCELLED:
            if too_late:
                unchanged += 1
                continue
            row.state, row.due_at, row.reason = FollowUpState.PLANNED, plan.due_at, "replanned"
            created += 1
        else:
            unchanged += 1  # sending, sent, skipped or failed: history
    for key, row in stored.items():
        if key not in wanted and row.state == FollowUpState.PLANNED:
            row.state = FollowUpState.CANCELLED
            row.reason = "obsolete: no rule asks for it any more (closed, met, done or superseded)"
            cancelled += 1
    if inserts:
        created += _insert_new(session, inserts)
    session.flush()
    return ReconcileReport(created, rescheduled, cancelled, unchanged)


def _values(plan: Planned) -> dict[str, Any]:
    now = utcnow()
    return {
        "program_id": plan.program_id,
        "kind": plan.kind,
        "recipient_id": plan.recipient_id,
        "relationship_id": plan.relationship_id,
        "goal_id": plan.goal_id,
        "meeting_id": plan.meeting_id,
        "refs": plan.refs,
        "due_at": plan.due_at,
        "dedupe_key": plan.key,
        "state": FollowUpState.PLANNED,
        "reason": "",
        "attempts": 0,
        "claim_token": "",
        "created_at": now,
        "updated_at": now,
    }


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert rows, ignoring keys a concurrent planner inserted first; returns how many."""
    session.flush()
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = cast(Table, FollowUp.__table__)
    # One statement with executemany: SQLAlchemy batches it into multi-row INSERTs
    # ("insertmanyvalues") without compiling a statement per chunk of rows.
    statement = (
        insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id)
    )
    inserted = len(session.execute(statement, rows).all())
    return inserted


def reconcile_all(session: Session, *, now: datetime | None = None) -> ReconcileReport:
    """The periodic sweep: reconcile every program (time alone changes what is due)."""
    total = ReconcileReport()
    for program_id in list(session.scalars(select(Program.id).order_by(Program.id))):
        total = total + reconcile(session, program_id=program_id, now=now)
    return total


def still_wanted(
    session: Session, row: FollowUp, *, now: datetime, rules: RuleSet | None = None
) -> bool:
    """Whether the rules still derive ``row`` now: checked again just before sending, so
    a change the planner has not seen yet (no hook, or the hourly sweep not yet run) can
    never send an obsolete message."""
    rules = rules or default_rule_set()
    program = session.get(Program, row.program_id)
    if program is None or program.archived_at is not None:
        return False
    derived: list[Planned] = []
    if row.meeting_id is not None:
        meeting = session.get(Meeting, row.meeting_id)
        if meeting is None:
            return False
        ctx = _context(session, program, now, rules, {row.recipient_id})
        derived.extend(_derive_meeting(ctx, meeting, rules))
    elif row.goal_id is not None:
        goal = session.get(Goal, row.goal_id)
        if goal is None:
            return False
        only = {goal.owner_id} | ({goal.pair.mentor_id} if goal.pair else set())
        ctx = _context(session, program, now, rules, only)
        derived.extend(_derive_goal(ctx, goal, rules))
    elif row.relationship_id is not None:
        rel = session.get(Relationship, row.relationship_id)
        if rel is None:
            return False
        ctx = _context(session, program, now, rules, {rel.mentee_id, rel.mentor_id})
        derived.extend(_derive_relationship(ctx, rel, rules))
    else:
        ctx = _context(session, program, now, rules, set())
        for program_rule in rules.program_rules:
            derived.extend(program_rule(ctx))
    return any(p.key == row.dedupe_key and p.recipient_id in ctx.people for p in derived)
