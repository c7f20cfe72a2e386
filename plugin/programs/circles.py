"""Peer circles run by a coordinator: create, add and remove mentees, close. Audited.

Adding or removing a member also changes who is invited to the circle's upcoming
meetings (:func:`plugin.meetings.scheduling.sync_circle_attendees`), in the same
transaction.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.audit import record_audit
from plugin.db import utcnow
from plugin.meetings.scheduling import cancel_meetings_of_circle, sync_circle_attendees
from plugin.models import Circle, CircleMember, Participant, ParticipantStatus, Program, Track
from plugin.programs.errors import FormInvalid, StateConflict

__all__ = [
    "NAME_MAX",
    "add_circle_members",
    "circle_in_program",
    "circles_with_sizes",
    "close_circle",
    "create_circle",
    "remove_circle_member",
]

NAME_MAX: Final = 200


def circle_in_program(session: Session, program: Program, circle_id: int) -> Circle | None:
    """The circle with this id if it belongs to ``program``."""
    found = session.get(Circle, circle_id)
    return found if found is not None and found.program_id == program.id else None


def circles_with_sizes(session: Session, program: Program) -> list[tuple[Circle, int]]:
    """The program's circles, open first, with their current member counts (one query)."""
    current = (
        select(CircleMember.circle_id, func.count().label("n"))
        .where(CircleMember.left_at.is_(None))
        .group_by(CircleMember.circle_id)
        .subquery()
    )
    rows = session.execute(
        select(Circle, func.coalesce(current.c.n, 0))
        .outerjoin(current, current.c.circle_id == Circle.id)
        .where(Circle.program_id == program.id)
        .order_by(Circle.closed_at.is_not(None), Circle.name)
    ).all()
    return [(circle, int(n)) for circle, n in rows]


def _active(session: Session, program: Program, participant_id: int | None) -> Participant | None:
    if participant_id is None:
        return None
    person = session.get(Participant, participant_id)
    if person is None or person.program_id != program.id:
        return None
    return person if person.status == ParticipantStatus.ACTIVE else None


def _audit(
    session: Session,
    program: Program,
    actor_user_id: int,
    action: str,
    circle: Circle,
    **after: object,
) -> None:
    record_audit(
        session,
        course_id=program.course_id,
        program_id=program.id,
        actor_user_id=actor_user_id,
        action=action,
        target_type="circle",
        target_id=circle.id,
        after=dict(after),
    )


def create_circle(
    session: Session,
    program: Program,
    *,
    name: str,
    track: str,
    facilitator_id: int | None,
    actor_user_id: int,
) -> Circle:
    """A new circle (name, optional track, optional facilitator who mentors here)."""
    errors: dict[str, str] = {}
    name = name.strip()
    if not name:
        errors["name"] = "Enter a name for the circle."
    elif len(name) > NAME_MAX:
        errors["name"] = f"Use at most {NAME_MAX} characters."
    if track and track not in program.tracks:
        errors["track"] = "Choose one of the program's tracks, or none."
    facilitator = _active(session, program, facilitator_id)
    if facilitator_id is not None and (facilitator is None or not facilitator.is_mentor):
        errors["facilitator_id"] = "Choose a mentor enrolled in this program, or no facilitator."
    if errors:
        raise FormInvalid(errors)
    circle = Circle(
        program_id=program.id,
        name=name,
        track=Track(track) if track else None,
        facilitator_id=facilitator.id if facilitator else None,
    )
    session.add(circle)
    session.flush()
    _audit(session, program, actor_user_id, "circle.created", circle, name=name, track=track)
    return circle


def add_circle_members(
    session: Session,
    program: Program,
    circle: Circle,
    participant_ids: list[int],
    *,
    actor_user_id: int,
) -> int:
    """Add enrolled mentees to an open circle (someone who left may rejoin); they are
    invited to its upcoming meetings."""
    if circle.closed_at is not None:
        raise StateConflict("this circle is closed; create a new one")
    if not participant_ids:
        raise FormInvalid({"members": "Choose at least one mentee."})
    people = list(
        session.scalars(
            select(Participant).where(
                Participant.program_id == program.id,
                Participant.id.in_(participant_ids),
                Participant.status == ParticipantStatus.ACTIVE,
                Participant.is_mentee.is_(True),
            )
        )
    )
    if len(people) != len(set(participant_ids)):
        raise FormInvalid({"members": "Choose mentees enrolled in this program."})
    existing = {m.participant_id: m for m in circle.members}
    added = 0
    for person in people:
        member = existing.get(person.id)
        if member is None:
            circle.members.append(CircleMember(participant_id=person.id))
        elif member.left_at is not None:
            member.left_at = None
            member.joined_at = utcnow()
        else:
            continue
        added += 1
    session.flush()
    sync_circle_attendees(session, circle)
    _audit(
        session,
        program,
        actor_user_id,
        "circle.members_added",
        circle,
        participant_ids=[p.id for p in people],
    )
    return added


def remove_circle_member(
    session: Session, program: Program, circle: Circle, participant_id: int, *, actor_user_id: int
) -> None:
    """A member leaves the circle (kept in its history with ``left_at``) and its upcoming
    meetings."""
    member = next(
        (m for m in circle.members if m.participant_id == participant_id and m.left_at is None),
        None,
    )
    if member is None:
        raise StateConflict("this person is not a current member of the circle")
    member.left_at = utcnow()
    session.flush()
    sync_circle_attendees(session, circle)
    _audit(
        session,
        program,
        actor_user_id,
        "circle.member_removed",
        circle,
        participant_id=participant_id,
    )


def close_circle(session: Session, program: Program, circle: Circle, *, actor_user_id: int) -> None:
    """Close the circle; its members and history stay for the record.

    Its meetings that have not started are called off in every calendar, as a closed
    relationship's are; meetings already held or missed stay as history.
    """
    if circle.closed_at is not None:
        raise StateConflict("this circle is already closed")
    circle.closed_at = utcnow()
    session.flush()
    cancel_meetings_of_circle(session, circle, now=circle.closed_at)
    _audit(session, program, actor_user_id, "circle.closed", circle)
