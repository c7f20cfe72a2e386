"""Re-matching: a mentee whose relationship on a track closed as not working out finds a
new mentor on that track, bringing the goals they choose.

A closed relationship waits for a re-match until a later relationship of the same mentee on
the same track starts (or is still open, e.g. a request out). Mentors are ranked with the
browse page's engine and explanations; every mentor this mentee's relationship did not
work with is left out of the list and refused by the service (the same hard constraint as
in match rounds). The chosen goals move to the new relationship when it becomes active (at
once for a coordinator, on the mentor's acceptance for a mentee's request): see
:func:`plugin.programs.goals.carry_over_goals`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.audit import record_audit
from plugin.models import (
    CloseReason,
    Goal,
    Participant,
    ParticipantStatus,
    Program,
    Relationship,
    RelationshipEvent,
    RelationshipOrigin,
    RelationshipStatus,
)
from plugin.models.relationships import SEAT_HOLDING
from plugin.programs.coordination import Actor
from plugin.programs.dashboards import MentorCard, browse_mentors
from plugin.programs.errors import FormInvalid, NotAllowed, StateConflict
from plugin.programs.goals import CARRYABLE
from plugin.programs.notifications import notify
from plugin.programs.relationships import not_working_mentor_ids, propose_relationship

__all__ = [
    "NOTE_MAX",
    "RematchCase",
    "carryable_goals",
    "mentee_rematches",
    "rematch_case",
    "rematch_mentors",
    "request_rematch",
    "waiting_rematches",
]

NOTE_MAX = 1000


@dataclass(frozen=True)
class RematchCase:
    """A relationship closed as not working out whose mentee has no new mentor on its track.

    ``pending`` is a re-match request already waiting for a mentor's answer, if any.
    """

    closed: Relationship
    pending: Relationship | None = None


def _cases(session: Session, program: Program, mentee_id: int | None) -> list[RematchCase]:
    not_working = select(Relationship.mentee_id).where(
        Relationship.program_id == program.id,
        Relationship.close_reason == CloseReason.NOT_WORKING,
    )
    if mentee_id is not None:
        not_working = not_working.where(Relationship.mentee_id == mentee_id)
    rows = session.scalars(
        select(Relationship)
        .join(Participant, Participant.id == Relationship.mentee_id)
        .where(
            Relationship.program_id == program.id,
            Relationship.mentee_id.in_(not_working),
            Participant.status == ParticipantStatus.ACTIVE,
            Participant.is_mentee.is_(True),
        )
        .order_by(Relationship.id)
    )
    history: dict[tuple[int, str], list[Relationship]] = defaultdict(list)
    for rel in rows:
        history[(rel.mentee_id, rel.track.value)].append(rel)
    cases: list[RematchCase] = []
    for rels in history.values():
        last_failed = max(
            (i for i, r in enumerate(rels) if r.close_reason == CloseReason.NOT_WORKING),
            default=None,
        )
        if last_failed is None:
            continue
        later = rels[last_failed + 1 :]
        if any(r.started_at is not None for r in later):
            continue  # a new relationship started: re-matched
        pending = next((r for r in later if r.status in SEAT_HOLDING), None)
        cases.append(RematchCase(closed=rels[last_failed], pending=pending))
    return sorted(cases, key=lambda c: c.closed.closed_at or c.closed.created_at)


def waiting_rematches(session: Session, program: Program) -> list[RematchCase]:
    """Every mentee of ``program`` waiting for a re-match, longest waiting first."""
    return _cases(session, program, None)


def mentee_rematches(session: Session, program: Program, mentee: Participant) -> list[RematchCase]:
    """``mentee``'s tracks waiting for a re-match (for their home page)."""
    return _cases(session, program, mentee.id)


def rematch_case(
    session: Session, program: Program, relationship_id: int, *, mentee_id: int | None = None
) -> RematchCase | None:
    """The re-match case of closed relationship ``relationship_id`` in ``program``, if any.

    With ``mentee_id``, only that mentee's (another mentee's case is "not found").
    """
    closed = session.get(Relationship, relationship_id)
    if closed is None or closed.program_id != program.id:
        return None
    if mentee_id is not None and closed.mentee_id != mentee_id:
        return None
    if closed.close_reason != CloseReason.NOT_WORKING:
        return None
    return next(
        (c for c in _cases(session, program, closed.mentee_id) if c.closed.id == closed.id), None
    )


def rematch_mentors(session: Session, program: Program, case: RematchCase) -> list[MentorCard]:
    """Mentors with a free seat on the track, ranked and explained as on the browse page,
    which already leaves out every mentor it did not work out with."""
    return browse_mentors(session, program, case.closed.mentee, case.closed.track)


def carryable_goals(session: Session, case: RematchCase) -> list[Goal]:
    """The mentee's unfinished goals of the closed relationship, which may come along."""
    return list(
        session.scalars(
            select(Goal)
            .where(
                Goal.relationship_id == case.closed.id,
                Goal.owner_id == case.closed.mentee_id,
                Goal.status.in_(CARRYABLE),
            )
            .order_by(Goal.id)
        )
    )


def _goal_ids(session: Session, case: RematchCase, raw: Sequence[str]) -> list[int]:
    allowed = {g.id for g in carryable_goals(session, case)}
    chosen: list[int] = []
    for value in raw:
        if not value.isdigit() or int(value) not in allowed:
            raise FormInvalid(
                {"goals": "Choose goals from this list only; reload the page if it changed."}
            )
        if int(value) not in chosen:
            chosen.append(int(value))
    return chosen


def request_rematch(
    session: Session,
    program: Program,
    case: RematchCase,
    actor: Actor,
    *,
    mentor_id: str,
    goal_ids: Sequence[str],
    note: str = "",
    by_coordinator: bool = False,
) -> Relationship:
    """Ask (mentee) or pair (coordinator) a new mentor for ``case``'s mentee and track.

    A mentee's request waits for the mentor's answer; a coordinator's pairing is active at
    once. Either way the re-match is recorded on both relationships and audited. Raises
    FormInvalid for a bad field, NotAllowed for a mentor it did not work out with,
    StateConflict when a request is already out, and the seat errors as they come.
    """
    closed = case.closed
    mentee = closed.mentee
    if closed.program_id != program.id:
        raise NotAllowed("that relationship is not in this program")
    if case.pending is not None:
        raise StateConflict(
            f"a request to {case.pending.mentor.display_name} is already waiting for an "
            "answer; wait for it, or ask the coordinator to close it"
        )
    errors: dict[str, str] = {}
    mentor = session.get(Participant, int(mentor_id)) if mentor_id.isdigit() else None
    if mentor is None or mentor.program_id != program.id or not mentor.is_mentor:
        errors["mentor_id"] = "Choose one of the mentors listed."
    note = note.strip()
    if len(note) > NOTE_MAX:
        errors["note"] = f"Use at most {NOTE_MAX} characters."
    try:
        chosen = _goal_ids(session, case, goal_ids)
    except FormInvalid as exc:
        errors.update(exc.errors)
        chosen = []
    if errors:
        raise FormInvalid(errors)
    assert mentor is not None
    if mentor.id in not_working_mentor_ids(session, mentee):
        raise NotAllowed(
            "a relationship with this mentor did not work out before; choose another mentor"
        )
    rel = _propose(session, program, case, actor, mentor, note, chosen, by_coordinator)
    if not by_coordinator:
        notify(
            session,
            mentor,
            kind="relationship.requested",
            text=f"{mentee.display_name} asked you to be their {closed.track.label} mentor.",
            link=f"/programs/{program.id}/",
        )
    return rel


def _propose(
    session: Session,
    program: Program,
    case: RematchCase,
    actor: Actor,
    mentor: Participant,
    note: str,
    goal_ids: list[int],
    by_coordinator: bool,
) -> Relationship:
    closed = case.closed
    rel = propose_relationship(
        session,
        program=program,
        mentee=closed.mentee,
        mentor=mentor,
        track=closed.track,
        origin=RelationshipOrigin.COORDINATOR if by_coordinator else RelationshipOrigin.REQUEST,
        actor=actor.participant,
        note=note,
        activate=by_coordinator,
        rematch_of=closed,
        carry_goal_ids=goal_ids,
    )
    who = "the coordinator" if by_coordinator else "the mentee"
    actor_id = actor.participant.id if actor.participant is not None else None
    reason = f"relationship {closed.id} closed as not working out"
    session.add_all(
        [
            RelationshipEvent(
                relationship=rel,
                actor_id=actor_id,
                kind="rematch",
                to_status=rel.status.value,
                note=f"Re-match by {who}: {reason}; {len(goal_ids)} goal(s) chosen to carry over.",
            ),
            RelationshipEvent(
                relationship=closed,
                actor_id=actor_id,
                kind="rematched",
                from_status=RelationshipStatus.CLOSED.value,
                to_status=RelationshipStatus.CLOSED.value,
                note=f"Re-match by {who}: relationship {rel.id}.",
            ),
        ]
    )
    record_audit(
        session,
        course_id=program.course_id,
        program_id=program.id,
        actor_user_id=actor.user_id,
        action="relationship.rematch",
        target_type="relationship",
        target_id=rel.id,
        after={
            "track": rel.track.value,
            "status": rel.status.value,
            "rematch_of": closed.id,
            "reason": CloseReason.NOT_WORKING.value,
            "goals_chosen": len(goal_ids),
            "by": "coordinator" if by_coordinator else "mentee",
        },
    )
    session.flush()
    return rel
