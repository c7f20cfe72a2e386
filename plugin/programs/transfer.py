"""CSV exports of a program and the import of external mentors (all rows or none).

Exports leave private preferences out and neutralise spreadsheet formulas: a cell that
starts with ``= + - @`` (or a tab or carriage return, which some spreadsheets strip first)
gets a leading apostrophe, so a name like ``=HYPERLINK(...)`` stays text in Excel.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from plugin.audit import record_audit
from plugin.models import (
    CourseMembership,
    Participant,
    ParticipantStatus,
    Profile,
    Program,
    Relationship,
    Track,
    User,
)
from plugin.programs.errors import ProgramError
from plugin.programs.invitation_mail import queue_invitation_mail

__all__ = [
    "IMPORT_COLUMNS",
    "ImportRejected",
    "RowError",
    "csv_lines",
    "export_participants",
    "export_relationships",
    "import_external_mentors",
    "safe_cell",
]

IMPORT_COLUMNS: Final = ("name", "email", "tracks", "capacity")
MAX_IMPORT_ROWS: Final = 500
CAPACITY_RANGE: Final = (1, 20)
NAME_MAX: Final = 255
EMAIL_MAX: Final = 320
#: Deliberately loose (one @, a dot in the domain, no spaces): the invitation link is the
#: real proof of an address; this only catches typos and swapped columns.
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_lines(rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """CSV text line by line (for streaming), every cell made formula-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def export_participants(session: Session, program: Program) -> Iterator[str]:
    """Participants as CSV lines (shared profile fields only, no private preferences)."""
    header = [
        "participant_id",
        "name",
        "email",
        "status",
        "mentee",
        "mentor",
        "coordinator",
        "tracks_wanted",
        "tracks_offered",
        "career_stage",
        "meeting_format",
        "languages",
        "time_zone",
        "enrolled_at",
        "withdrawn_at",
    ]

    def rows() -> Iterator[Sequence[object]]:
        yield header
        query = (
            select(Participant)
            .where(Participant.program_id == program.id)
            .options(joinedload(Participant.user), joinedload(Participant.profile))
            .order_by(Participant.id)
        )
        for p in session.scalars(query).unique():
            profile: Profile | None = p.profile
            yield [
                p.id,
                p.display_name,
                p.email,
                p.status.value,
                _yes(p.is_mentee),
                _yes(p.is_mentor),
                _yes(p.is_coordinator),
                ";".join(profile.tracks_wanted) if profile else "",
                ";".join(profile.tracks_offered) if profile else "",
                profile.career_stage.value if profile and profile.career_stage else "",
                profile.meeting_format.value if profile else "",
                ";".join(profile.languages) if profile else "",
                profile.time_zone if profile else "",
                p.enrolled_at.isoformat(timespec="seconds"),
                p.withdrawn_at.isoformat(timespec="seconds") if p.withdrawn_at else "",
            ]

    return csv_lines(rows())


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def export_relationships(session: Session, program: Program) -> Iterator[str]:
    """Relationships as CSV lines: who, which track, status, dates, close reason."""
    header = [
        "relationship_id",
        "mentee",
        "mentee_email",
        "mentor",
        "mentor_email",
        "track",
        "status",
        "origin",
        "created_at",
        "started_at",
        "closed_at",
        "close_reason",
    ]

    def rows() -> Iterator[Sequence[object]]:
        yield header
        query = (
            select(Relationship)
            .where(Relationship.program_id == program.id)
            .options(
                joinedload(Relationship.mentee).joinedload(Participant.user),
                joinedload(Relationship.mentor).joinedload(Participant.user),
            )
            .order_by(Relationship.id)
        )
        for r in session.scalars(query).unique():
            yield [
                r.id,
                r.mentee.display_name,
                r.mentee.email,
                r.mentor.display_name,
                r.mentor.email,
                r.track.value,
                r.status.value,
                r.origin.value,
                r.created_at.isoformat(timespec="seconds"),
                r.started_at.isoformat(timespec="seconds") if r.started_at else "",
                r.closed_at.isoformat(timespec="seconds") if r.closed_at else "",
                r.close_reason.value if r.close_reason else "",
            ]

    return csv_lines(rows())


@dataclass(frozen=True)
class RowError:
    """What is wrong with one line of an import (line 1 is the header)."""

    line: int
    message: str


class ImportRejected(ProgramError):
    """The import was refused as a whole; ``errors`` says which lines and why."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} problem(s) in the file; nothing was imported")
        self.errors = errors


@dataclass(frozen=True)
class _Row:
    line: int
    name: str
    email: str
    tracks: list[str]
    capacity: int


def _read_rows(text: str, program: Program) -> tuple[list[_Row], list[RowError]]:
    errors: list[RowError] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in next(reader, [])]
    if tuple(header[: len(IMPORT_COLUMNS)]) != IMPORT_COLUMNS:
        return [], [RowError(1, "The first line must be the header: name,email,tracks,capacity.")]
    rows: list[_Row] = []
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(rows) + len(errors) >= MAX_IMPORT_ROWS:
            errors.append(RowError(line, f"Import at most {MAX_IMPORT_ROWS} mentors at a time."))
            break
        cells = [c.strip() for c in cells] + [""] * (len(IMPORT_COLUMNS) - len(cells))
        name, email, tracks_raw, capacity_raw = cells[:4]
        problems: list[str] = []
        if not name:
            problems.append("the name is empty")
        elif len(name) > NAME_MAX:
            problems.append(f"the name is longer than {NAME_MAX} characters")
        email = email.lower()
        if len(email) > EMAIL_MAX or not _EMAIL.match(email):
            problems.append("the e-mail address is not valid")
        tracks = [t.strip().lower() for t in re.split(r"[;|/ ]+", tracks_raw) if t.strip()]
        unknown = [t for t in tracks if t not in program.tracks]
        if not tracks:
            problems.append("no track is given")
        elif unknown:
            problems.append(
                f"unknown track {', '.join(unknown)} (this program offers "
                f"{', '.join(program.tracks)})"
            )
        low, high = CAPACITY_RANGE
        if not capacity_raw.isdigit() or not low <= int(capacity_raw) <= high:
            problems.append(f"the capacity must be a whole number from {low} to {high}")
        if problems:
            errors.append(RowError(line, _capitalised("; ".join(problems)) + "."))
        else:
            ordered = [t.value for t in Track if t.value in tracks]
            rows.append(_Row(line, name, email, ordered, int(capacity_raw)))
    return rows, errors


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _conflicts(session: Session, program: Program, rows: list[_Row]) -> list[RowError]:
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for row in rows:
        if row.email in seen:
            errors.append(RowError(row.line, f"The e-mail is already on line {seen[row.email]}."))
        seen.setdefault(row.email, row.line)
    emails = list(seen)
    invited = set(
        session.scalars(
            select(Participant.invite_email).where(
                Participant.program_id == program.id, Participant.invite_email.in_(emails)
            )
        )
    )
    in_program = set(
        session.scalars(
            select(func.lower(User.email))
            .join(Participant, Participant.user_id == User.id)
            .where(Participant.program_id == program.id, func.lower(User.email).in_(emails))
        )
    )
    in_course = set(
        session.scalars(
            select(func.lower(User.email))
            .join(CourseMembership, CourseMembership.user_id == User.id)
            .where(
                CourseMembership.course_id == program.course_id,
                CourseMembership.active.is_(True),
                func.lower(User.email).in_(emails),
            )
        )
    )
    for row in rows:
        if row.email in invited or row.email in in_program:
            errors.append(RowError(row.line, "This person is already in the program."))
        elif row.email in in_course:
            errors.append(
                RowError(
                    row.line,
                    "This person is in the course; they can enroll as a mentor from the course.",
                )
            )
    return errors


def import_external_mentors(
    session: Session, program: Program, text: str, *, actor_user_id: int
) -> list[Participant]:
    """Create invited mentors from CSV text, all or none, and queue each one's e-mail.

    Raises ImportRejected listing every bad line; nothing is written then. The e-mails are
    written in the same transaction and sent by a job after it commits.
    """
    rows, errors = _read_rows(text, program)
    if not errors and not rows:
        errors.append(RowError(2, "The file has no mentors below the header."))
    errors.extend(_conflicts(session, program, rows))
    if errors:
        raise ImportRejected(sorted(errors, key=lambda e: e.line))
    created: list[Participant] = []
    for row in rows:
        participant = Participant(
            program_id=program.id,
            user_id=None,
            is_mentor=True,
            status=ParticipantStatus.INVITED,
            invite_name=row.name,
            invite_email=row.email,
        )
        participant.profile = Profile(
            tracks_offered=row.tracks,
            capacity_by_track={t: row.capacity for t in row.tracks},
            capacity_total=row.capacity,
        )
        session.add(participant)
        created.append(participant)
    session.flush()
    for participant in created:
        queue_invitation_mail(session, participant, invited_by_user_id=actor_user_id)
    record_audit(
        session,
        course_id=program.course_id,
        program_id=program.id,
        actor_user_id=actor_user_id,
        action="mentors.imported",
        target_type="program",
        target_id=program.id,
        after={
            "invited": len(created),
            "participant_ids": [p.id for p in created],
            "emailed": len(created),
        },
    )
    return created
