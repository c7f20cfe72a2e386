"""Programs in a course: list, create, default, and settings changes (audited)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.audit import record_audit
from plugin.models import Participant, ParticipantStatus, Program, Track
from plugin.programs.errors import FormInvalid

__all__ = ["create_program", "default_program", "programs_holding_data", "programs_in_course"]

TITLE_MAX = 200


def programs_in_course(session: Session, course_id: int) -> list[Program]:
    """The course's programs that are not archived, default first."""
    return list(
        session.scalars(
            select(Program)
            .where(Program.course_id == course_id, Program.archived_at.is_(None))
            .order_by(Program.is_default.desc(), Program.id)
        )
    )


def programs_holding_data(session: Session, *, course_id: int, user_id: int) -> list[Program]:
    """The course's programs (archived too) that hold data about ``user_id``, by id."""
    return list(
        session.scalars(
            select(Program)
            .join(Participant, Participant.program_id == Program.id)
            .where(
                Program.course_id == course_id,
                Participant.user_id == user_id,
                Participant.status != ParticipantStatus.ERASED,
            )
            .order_by(Program.id)
        )
    )


def default_program(session: Session, course_id: int) -> Program | None:
    """The program a launch that names none opens: the default, else the only one."""
    programs = programs_in_course(session, course_id)
    for program in programs:
        if program.is_default:
            return program
    return programs[0] if len(programs) == 1 else None


def create_program(
    session: Session,
    *,
    course_id: int,
    title: str,
    tracks: list[str],
    actor_user_id: int | None,
    resource_link_id: str = "",
) -> Program:
    """A new program in the course; the course's first program becomes its default."""
    errors: dict[str, str] = {}
    title = title.strip()
    if not title:
        errors["title"] = "Enter a name for the program."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"Use at most {TITLE_MAX} characters."
    unknown = [t for t in tracks if t not in Track._value2member_map_]
    if unknown:
        errors["tracks"] = "Choose tracks from the list."
    elif not tracks:
        errors["tracks"] = "Choose at least one track."
    if errors:
        raise FormInvalid(errors)
    first = not programs_in_course(session, course_id)
    program = Program(
        course_id=course_id,
        title=title,
        tracks=[t.value for t in Track if t.value in tracks],
        is_default=first,
        resource_link_id=resource_link_id,
    )
    session.add(program)
    session.flush()
    record_audit(
        session,
        course_id=course_id,
        program_id=program.id,
        actor_user_id=actor_user_id,
        action="program.created",
        target_type="program",
        target_id=program.id,
        after={"title": program.title, "tracks": program.tracks},
    )
    return program
