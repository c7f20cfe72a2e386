"""The de-identified research export: a zip of CSV files for program evaluation.

What it holds: roles, statuses, tracks, career stages, formats, counts, progress and dates
(days, never times). What it never holds: names, e-mail addresses, LMS ids, row ids, free
text (bios, goals, notes, agendas, titles, messages, reasons) or time zones. People,
relationships, meetings and goals are named by pseudonyms: a keyed HMAC-SHA256 of the row
id under the program's own random :class:`~plugin.models.ResearchKey`, which is stored
encrypted and never exported. The same person keeps the same pseudonym in every export of
the program; pseudonyms of two programs cannot be linked. Every download is audited.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import IO, Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.audit import record_audit
from plugin.models import (
    FollowUp,
    Goal,
    Meeting,
    Participant,
    Profile,
    Program,
    Relationship,
    ResearchKey,
)
from plugin.programs.transfer import safe_cell

__all__ = ["AUDIT_ACTION", "Pseudonyms", "build_research_zip", "record_download", "research_key"]

AUDIT_ACTION: Final = "export.research_downloaded"
#: Hex characters of each pseudonym (64 bits: no collision in any program's lifetime).
PSEUDONYM_HEX: Final = 16
BATCH: Final = 500
Rows = Iterator[Sequence[object]]
#: Zips up to this size stay in memory; larger ones spill to a temporary file.
SPOOL_BYTES: Final = 8 * 1024 * 1024

README = """Preceptor research export (de-identified)

Every person, relationship, meeting and goal is named by a pseudonym: a keyed hash of
its internal id under a secret kept by the program and never exported. The same person
has the same pseudonym in every export of this program, so exports can be joined; they
cannot be linked to other programs or back to people without the secret.

Not included: names, e-mail addresses, LMS identifiers, internal ids, free text of any
kind, time zones, and times of day (dates only, YYYY-MM-DD, in UTC).

Files: participants.csv, relationships.csv, meetings.csv, goals.csv, followups.csv.
Empty cells mean "not known" or "not yet".
"""


class Pseudonyms:
    """Stable pseudonyms of one program's rows (``p-`` people, ``r-`` relationships...)."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def of(self, kind: str, row_id: int | None) -> str:
        if row_id is None:
            return ""
        digest = hmac.new(self._key, f"{kind}:{row_id}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}-{digest[:PSEUDONYM_HEX]}"


def research_key(session: Session, program: Program) -> ResearchKey:
    """The program's research key, made on first use (two first uses at once: one wins)."""
    found = session.get(ResearchKey, program.id)
    if found is not None:
        return found
    try:
        with session.begin_nested():
            session.add(ResearchKey(program_id=program.id))
    except IntegrityError:
        pass  # another request made it first; read theirs
    key = session.scalar(select(ResearchKey).where(ResearchKey.program_id == program.id))
    assert key is not None
    return key


def record_download(session: Session, program: Program, actor_user_id: int) -> None:
    """Audit a download (committed by the caller before the file is sent)."""
    record_audit(
        session,
        course_id=program.course_id,
        program_id=program.id,
        action=AUDIT_ACTION,
        actor_user_id=actor_user_id,
        target_type="program",
        target_id=program.id,
    )


def _day(value: datetime | date | None) -> str:
    if value is None:
        return ""
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _rows(session: Session, query: Any) -> Iterator[Any]:
    yield from session.scalars(query.execution_options(yield_per=BATCH))


def _participants(session: Session, program: Program, ids: Pseudonyms) -> Rows:
    yield (
        "participant",
        "mentee",
        "mentor",
        "coordinator",
        "status",
        "career_stage",
        "tracks_wanted",
        "tracks_offered",
        "meeting_format",
        "enrolled_on",
        "withdrawn_on",
    )
    query = (
        select(Participant, Profile)
        .outerjoin(Profile, Profile.participant_id == Participant.id)
        .where(Participant.program_id == program.id)
        .order_by(Participant.id)
    )
    for p, profile in session.execute(query.execution_options(yield_per=BATCH)):
        yield (
            ids.of("p", p.id),
            _yes(p.is_mentee),
            _yes(p.is_mentor),
            _yes(p.is_coordinator),
            p.status.value,
            profile.career_stage.value if profile and profile.career_stage else "",
            ";".join(sorted(profile.tracks_wanted)) if profile else "",
            ";".join(sorted(profile.tracks_offered)) if profile else "",
            profile.meeting_format.value if profile else "",
            _day(p.enrolled_at),
            _day(p.withdrawn_at),
        )


def _relationships(session: Session, program: Program, ids: Pseudonyms) -> Rows:
    yield (
        "relationship",
        "mentee",
        "mentor",
        "track",
        "status",
        "origin",
        "close_reason",
        "created_on",
        "started_on",
        "closed_on",
    )
    query = (
        select(Relationship).where(Relationship.program_id == program.id).order_by(Relationship.id)
    )
    for r in _rows(session, query):
        yield (
            ids.of("r", r.id),
            ids.of("p", r.mentee_id),
            ids.of("p", r.mentor_id),
            r.track.value,
            r.status.value,
            r.origin.value,
            r.close_reason.value if r.close_reason else "",
            _day(r.created_at),
            _day(r.started_at),
            _day(r.closed_at),
        )


def _meetings(session: Session, program: Program, ids: Pseudonyms) -> Rows:
    yield ("meeting", "relationship", "kind", "format", "status", "on", "duration_minutes")
    query = select(Meeting).where(Meeting.program_id == program.id).order_by(Meeting.id)
    for m in _rows(session, query):
        yield (
            ids.of("m", m.id),
            ids.of("r", m.relationship_id),
            m.kind.value,
            m.format.value,
            m.status.value,
            _day(m.starts_at),
            round((m.ends_at - m.starts_at).total_seconds() / 60),
        )


def _goals(session: Session, program: Program, ids: Pseudonyms) -> Rows:
    yield (
        "goal",
        "owner",
        "relationship",
        "shared_in_circle",
        "status",
        "progress",
        "created_on",
        "target_on",
    )
    query = select(Goal).where(Goal.program_id == program.id).order_by(Goal.id)
    for g in _rows(session, query):
        yield (
            ids.of("g", g.id),
            ids.of("p", g.owner_id),
            ids.of("r", g.relationship_id),
            _yes(g.circle_id is not None),
            g.status.value,
            g.progress,
            _day(g.created_at),
            _day(g.target_date),
        )


def _followups(session: Session, program: Program, ids: Pseudonyms) -> Rows:
    yield ("kind", "recipient", "relationship", "state", "attempts", "due_on", "sent_on")
    query = select(FollowUp).where(FollowUp.program_id == program.id).order_by(FollowUp.id)
    for f in _rows(session, query):
        yield (
            f.kind.value,
            ids.of("p", f.recipient_id),
            ids.of("r", f.relationship_id),
            f.state.value,
            f.attempts,
            _day(f.due_at),
            _day(f.sent_at),
        )


FILES: Final = {
    "participants.csv": _participants,
    "relationships.csv": _relationships,
    "meetings.csv": _meetings,
    "goals.csv": _goals,
    "followups.csv": _followups,
}


def _write_csv(target: IO[bytes], rows: Iterable[Sequence[object]]) -> None:
    text = io.TextIOWrapper(target, encoding="utf-8", newline="")
    writer = csv.writer(text)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])  # no free text, but guard anyway
    text.flush()
    text.detach()


def build_research_zip(session: Session, program: Program) -> IO[bytes]:
    """The research export of ``program`` as a zip file, rewound, ready to send."""
    ids = Pseudonyms(research_key(session, program).secret)
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", README)
        for name, rows in FILES.items():
            with archive.open(name, "w") as member:
                _write_csv(member, rows(session, program, ids))
    spool.seek(0)
    return spool
