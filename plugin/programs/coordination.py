"""What a coordinator does to people and relationships: pair, pause, resume, close, bulk.

Every function looks things up inside the given program only (an id from another program
is "not found", never acted on), goes through :mod:`plugin.programs.relationships` for
seats and lifecycle, and writes an audit event with the acting user.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.audit import record_audit
from plugin.models import (
    CloseReason,
    CourseMembership,
    Participant,
    ParticipantStatus,
    Program,
    Relationship,
    RelationshipOrigin,
    Track,
)
from plugin.programs.enrollment import withdraw
from plugin.programs.errors import FormInvalid, ProgramError
from plugin.programs.relationships import close_relationship, propose_relationship, set_paused

__all__ = [
    "COORDINATOR_CLOSE_REASONS",
    "NOTE_MAX",
    "Actor",
    "change_relationship",
    "close_relationships",
    "make_coordinators",
    "pair",
    "participant_in_program",
    "relationship_in_program",
    "withdraw_participants",
]

NOTE_MAX: Final = 2000
#: Reasons a coordinator may give when closing (declined and left-course are the system's).
COORDINATOR_CLOSE_REASONS: Final = (
    CloseReason.COMPLETED,
    CloseReason.NOT_WORKING,
    CloseReason.WITHDRAWN,
    CloseReason.OTHER,
)


@dataclass(frozen=True)
class Actor:
    """Who acts: the user (for the audit) and their enrollment, if any (for history)."""

    user_id: int
    participant: Participant | None


def participant_in_program(
    session: Session, program: Program, participant_id: int | None
) -> Participant | None:
    """The participant with this id if they belong to ``program``."""
    if participant_id is None:
        return None
    found = session.get(Participant, participant_id)
    return found if found is not None and found.program_id == program.id else None


def relationship_in_program(
    session: Session, program: Program, relationship_id: int
) -> Relationship | None:
    """The relationship with this id if it belongs to ``program``."""
    found = session.get(Relationship, relationship_id)
    return found if found is not None and found.program_id == program.id else None


def _note(note: str) -> str:
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise FormInvalid({"note": f"Use at most {NOTE_MAX} characters."})
    return note


def _audit_relationship(
    session: Session, program: Program, actor: Actor, action: str, rel: Relationship, **after: str
) -> None:
    record_audit(
        session,
        course_id=program.course_id,
        program_id=program.id,
        actor_user_id=actor.user_id,
        action=action,
        target_type="relationship",
        target_id=rel.id,
        after={"track": rel.track.value, "status": rel.status.value, **after},
    )


def pair(
    session: Session,
    program: Program,
    actor: Actor,
    *,
    mentee_id: int | None,
    mentor_id: int | None,
    track: str,
    note: str = "",
) -> Relationship:
    """Pair a mentee with a mentor on a track, active at once (a coordinator's decision).

    Raises FormInvalid for a missing or foreign person or track, and the relationship
    errors (CapacityFull, StateConflict, NotAllowed) as they come.
    """
    errors: dict[str, str] = {}
    mentee = participant_in_program(session, program, mentee_id)
    mentor = participant_in_program(session, program, mentor_id)
    if mentee is None:
        errors["mentee_id"] = "Choose a mentee in this program."
    if mentor is None:
        errors["mentor_id"] = "Choose a mentor in this program."
    if track not in program.tracks:
        errors["track"] = "Choose one of the program's tracks."
    try:
        note = _note(note)
    except FormInvalid as exc:
        errors.update(exc.errors)
    if errors:
        raise FormInvalid(errors)
    assert mentee is not None
    assert mentor is not None
    rel = propose_relationship(
        session,
        program=program,
        mentee=mentee,
        mentor=mentor,
        track=Track(track),
        origin=RelationshipOrigin.COORDINATOR,
        actor=actor.participant,
        note=note,
        activate=True,
    )
    _audit_relationship(
        session,
        program,
        actor,
        "relationship.created",
        rel,
        mentee_id=str(mentee.id),
        mentor_id=str(mentor.id),
    )
    return rel


def change_relationship(
    session: Session,
    program: Program,
    actor: Actor,
    rel: Relationship,
    *,
    action: str,
    reason: str = "",
    note: str = "",
) -> Relationship:
    """Pause, resume or close (with a reason) one relationship of the program."""
    note = _note(note)
    if rel.program_id != program.id:
        raise ProgramError("that relationship is not in this program")
    before = rel.status.value
    if action in ("pause", "resume"):
        set_paused(session, rel, paused=action == "pause", actor=actor.participant)
    elif action == "close":
        close_relationship(session, rel, reason=_reason(reason), actor=actor.participant, note=note)
    else:
        raise FormInvalid({"action": "Choose pause, resume or close."})
    record_audit(
        session,
        course_id=program.course_id,
        program_id=program.id,
        actor_user_id=actor.user_id,
        action=f"relationship.{action}d" if action != "close" else "relationship.closed",
        target_type="relationship",
        target_id=rel.id,
        before={"status": before},
        after={"status": rel.status.value, **({"reason": reason} if action == "close" else {})},
    )
    return rel


def _reason(reason: str) -> CloseReason:
    if reason not in {r.value for r in COORDINATOR_CLOSE_REASONS}:
        raise FormInvalid({"reason": "Choose why the relationship ends."})
    return CloseReason(reason)


def _ids(values: Iterable[str]) -> list[int]:
    out: list[int] = []
    for value in values:
        if not value.isdigit():
            raise FormInvalid({"selected": "The selection could not be read; reload the page."})
        out.append(int(value))
    return out


def close_relationships(
    session: Session,
    program: Program,
    actor: Actor,
    relationship_ids: Sequence[str],
    *,
    reason: str,
    note: str = "",
) -> int:
    """Close every selected open relationship of the program; all or nothing."""
    ids = _ids(relationship_ids)
    if not ids:
        raise FormInvalid({"selected": "Select at least one relationship."})
    close_reason = _reason(reason)
    note = _note(note)
    rels = list(
        session.scalars(
            select(Relationship).where(
                Relationship.program_id == program.id, Relationship.id.in_(ids)
            )
        )
    )
    if len(rels) != len(set(ids)):
        raise FormInvalid({"selected": "Some selected relationships are not in this program."})
    closed = 0
    for rel in rels:
        if not rel.is_open:
            continue
        before = rel.status.value
        close_relationship(session, rel, reason=close_reason, actor=actor.participant, note=note)
        record_audit(
            session,
            course_id=program.course_id,
            program_id=program.id,
            actor_user_id=actor.user_id,
            action="relationship.closed",
            target_type="relationship",
            target_id=rel.id,
            before={"status": before},
            after={"status": rel.status.value, "reason": close_reason.value},
        )
        closed += 1
    return closed


def _selected_participants(
    session: Session, program: Program, participant_ids: Sequence[str]
) -> list[Participant]:
    ids = _ids(participant_ids)
    people = list(
        session.scalars(
            select(Participant).where(Participant.program_id == program.id, Participant.id.in_(ids))
        )
    )
    if len(people) != len(set(ids)):
        raise FormInvalid({"selected": "Some selected people are not in this program."})
    return people


def make_coordinators(
    session: Session,
    program: Program,
    actor: Actor,
    *,
    participant_ids: Sequence[str] = (),
    user_ids: Sequence[str] = (),
) -> int:
    """Give the coordinator role to selected participants and course members (enrolling them)."""
    people = _selected_participants(session, program, participant_ids)
    members = _ids(user_ids)
    if not people and not members:
        raise FormInvalid({"selected": "Select at least one person."})
    if members:
        in_course = set(
            session.scalars(
                select(CourseMembership.user_id).where(
                    CourseMembership.course_id == program.course_id,
                    CourseMembership.active.is_(True),
                    CourseMembership.user_id.in_(members),
                )
            )
        )
        if in_course != set(members):
            raise FormInvalid({"selected": "Some selected people are not in this course."})
        enrolled = {
            p.user_id: p
            for p in session.scalars(
                select(Participant).where(
                    Participant.program_id == program.id, Participant.user_id.in_(members)
                )
            )
        }
        for user_id in members:
            person = enrolled.get(user_id)
            if person is None:
                person = Participant(program_id=program.id, user_id=user_id)
                session.add(person)
            people.append(person)
    changed = 0
    for person in people:
        if person.status == ParticipantStatus.WITHDRAWN:
            continue  # a withdrawn person re-enrolls themselves first
        if person.is_coordinator:
            continue
        person.is_coordinator = True
        session.flush()
        record_audit(
            session,
            course_id=program.course_id,
            program_id=program.id,
            actor_user_id=actor.user_id,
            action="participant.made_coordinator",
            target_type="participant",
            target_id=person.id,
            before={"is_coordinator": False},
            after={"is_coordinator": True},
        )
        changed += 1
    return changed


def withdraw_participants(
    session: Session,
    program: Program,
    actor: Actor,
    participant_ids: Sequence[str],
    *,
    note: str = "",
) -> int:
    """Withdraw selected participants (see :func:`enrollment.withdraw`); audited per person."""
    people = _selected_participants(session, program, participant_ids)
    if not people:
        raise FormInvalid({"selected": "Select at least one person."})
    note = _note(note)
    ids = [p.id for p in people if p.status != ParticipantStatus.WITHDRAWN]
    for person in people:
        if person.id not in ids:
            continue
        before = person.status.value
        # The same withdrawal a person makes themselves: relationships end, circles are
        # left, partners are told.
        withdraw(session, person, reason_note=note, by_coordinator=True, actor=actor.participant)
        record_audit(
            session,
            course_id=program.course_id,
            program_id=program.id,
            actor_user_id=actor.user_id,
            action="participant.withdrawn",
            target_type="participant",
            target_id=person.id,
            before={"status": before},
            after={"status": ParticipantStatus.WITHDRAWN.value},
        )
    session.flush()
    return len(ids)
