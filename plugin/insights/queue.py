"""The coordinator's attention queue: relationships whose signals say they need a word.

Built on :func:`plugin.insights.signals.relationship_signals`. An item a coordinator marked
handled (:func:`mark_handled`) leaves the queue until new evidence arrives: a signal of a
kind it did not have then, or a signal whose evidence is newer than the handling. Query
count is independent of the program's size, like the signals'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from plugin.audit import record_audit
from plugin.insights.signals import Health, RelationshipSignals, relationship_signals
from plugin.models import (
    AttentionHandled,
    Participant,
    Program,
    Relationship,
    RelationshipStatus,
)
from plugin.programs.errors import FormInvalid, StateConflict

__all__ = ["MAX_NOTE", "AttentionItem", "AttentionQueue", "attention_queue", "mark_handled"]

#: Longest handling note accepted (characters).
MAX_NOTE = 2000


@dataclass(frozen=True)
class AttentionItem:
    """One relationship in the queue: its signals, the two names, and the last handling."""

    signals: RelationshipSignals
    mentee: Participant
    mentor: Participant
    handled: AttentionHandled | None

    @property
    def health(self) -> Health:
        return self.signals.health


@dataclass(frozen=True)
class AttentionQueue:
    """Items to act on (worst first), and items handled whose signals have not cleared."""

    open: list[AttentionItem]
    handled: list[AttentionItem]


def _signal_keys(item: RelationshipSignals | None) -> list[str]:
    """What a handling remembers of each signal: ``"kind:level"``."""
    return sorted(f"{s.kind.value}:{s.level.value}" for s in item.signals) if item else []


def _still_handled(item: RelationshipSignals, handled: AttentionHandled | None) -> bool:
    """Handled, and nothing new since: every signal was known then, at the same or a worse
    level, and its evidence is not newer than the handling."""
    if handled is None:
        return False
    known: dict[str, int] = {}
    for key in handled.signal_kinds:
        kind, _, level = key.partition(":")
        known[kind] = max(known.get(kind, -1), Health(level).rank if level else -1)
    return all(
        known.get(s.kind.value, -1) >= s.level.rank and s.since <= handled.handled_at
        for s in item.signals
    )


def _latest_handled(session: Session, program_id: int) -> dict[int, AttentionHandled]:
    latest = (
        select(func.max(AttentionHandled.id))
        .where(AttentionHandled.program_id == program_id)
        .group_by(AttentionHandled.relationship_id)
    )
    rows = session.scalars(select(AttentionHandled).where(AttentionHandled.id.in_(latest)))
    return {row.relationship_id: row for row in rows}


def attention_queue(session: Session, program: Program, now: datetime) -> AttentionQueue:
    """The program's attention queue as of ``now``."""
    flagged = [s for s in relationship_signals(session, program, now) if s.health != Health.GOOD]
    handled = _latest_handled(session, program.id)
    ids = {s.mentee_id for s in flagged} | {s.mentor_id for s in flagged}
    people = {
        p.id: p
        for p in session.scalars(
            select(Participant)
            .where(Participant.id.in_(ids))
            .options(selectinload(Participant.user))
        )
    }
    open_items: list[AttentionItem] = []
    handled_items: list[AttentionItem] = []
    for signals in flagged:
        last = handled.get(signals.relationship_id)
        item = AttentionItem(signals, people[signals.mentee_id], people[signals.mentor_id], last)
        (handled_items if _still_handled(signals, last) else open_items).append(item)
    return AttentionQueue(open=open_items, handled=handled_items)


def mark_handled(
    session: Session,
    program: Program,
    relationship_id: int,
    *,
    note: str,
    actor_user_id: int,
    now: datetime,
) -> AttentionHandled:
    """Record that a coordinator handled a relationship's signals (with a note), audited."""
    rel = session.get(Relationship, relationship_id)
    if rel is None or rel.program_id != program.id:
        raise LookupError(relationship_id)
    text = note.strip()
    if not text:
        raise FormInvalid({"note": "Write what you did or decided, for the other coordinators."})
    if len(text) > MAX_NOTE:
        raise FormInvalid({"note": f"Keep the note under {MAX_NOTE} characters."})
    if rel.status != RelationshipStatus.ACTIVE:
        raise StateConflict("The relationship is no longer active; nothing to handle")
    current = next(
        (s for s in relationship_signals(session, program, now) if s.relationship_id == rel.id),
        None,
    )
    kinds = _signal_keys(current)
    row = AttentionHandled(
        program_id=program.id,
        relationship_id=rel.id,
        handled_by_user_id=actor_user_id,
        note=text,
        signal_kinds=kinds,
        handled_at=now,
    )
    session.add(row)
    record_audit(
        session,
        course_id=program.course_id,
        program_id=program.id,
        actor_user_id=actor_user_id,
        action="attention.handled",
        target_type="relationship",
        target_id=rel.id,
        # The note stays in its own row (it may name people); the audit keeps the facts.
        after={"signals": kinds},
    )
    session.flush()
    return row
