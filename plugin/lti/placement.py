"""Which program a launch opens, and what the launch tells us about that program.

Resolution order for a resource-link launch (see docs/lti.md):

1. the program named by the link's custom ``program_id`` (placed by deep linking), if it
   belongs to the launch's course; an id of another course (a link copied with the
   course, or a tampered one) is ignored and logged, never opened;
2. the program whose ``resource_link_id`` is the launch's resource link;
3. none: the person lands on the course home (default program or the list).

The first launch of a deep-linked program records its resource link id, and each launch
records the AGS endpoint the platform offers for it.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.jobs import QueueName, defer
from plugin.logs import get_logger
from plugin.lti.deep_linking import PROGRAM_PARAM
from plugin.lti.launch import CLAIM, RESOURCE_LINK, ValidatedLaunch
from plugin.lti.provisioning import LaunchIdentity, RecordedLaunch
from plugin.models import Program

__all__ = [
    "AGS_CLAIM",
    "SCOPE_LINEITEM",
    "SCOPE_SCORE",
    "note_grade_service",
    "open_program",
    "resolve_program",
]

log = get_logger(__name__)

AGS_CLAIM: Final = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
SCOPE_LINEITEM: Final = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_SCORE: Final = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
URL_MAX: Final = 2048


def _custom_program_id(claims: dict[str, Any]) -> int | None:
    custom = claims.get(f"{CLAIM}custom")
    value = custom.get(PROGRAM_PARAM) if isinstance(custom, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 19:
        return int(value.strip())
    return None


def resolve_program(
    session: Session,
    *,
    course_id: int,
    resource_link_id: str,
    claims: dict[str, Any],
    link_program: RecordedLaunch | None = None,
) -> Program | None:
    """The program a resource-link launch in ``course_id`` opens, or None (course home).

    ``link_program``: a recorded launch that already read the program of step 2.
    """
    program_id = _custom_program_id(claims)
    if program_id is not None:
        program = session.get(Program, program_id)
        if program is not None and program.course_id == course_id and program.archived_at is None:
            _record_link(session, program, resource_link_id)
            return program
        # Not this course's program: never open it; fall back as if no id was given.
        log.warning("lti.program_foreign", course_id=course_id, program_id=program_id)
    if not resource_link_id:
        return None
    if link_program is not None and link_program.link_program_read:
        return link_program.link_program
    return session.scalar(
        select(Program).where(
            Program.course_id == course_id,
            Program.resource_link_id == resource_link_id,
            Program.archived_at.is_(None),
        )
    )


def _record_link(session: Session, program: Program, resource_link_id: str) -> None:
    """Remember the first resource link that opened a deep-linked program."""
    if program.resource_link_id or not resource_link_id:
        return
    taken = session.scalar(
        select(Program.id).where(
            Program.course_id == program.course_id, Program.resource_link_id == resource_link_id
        )
    )
    if taken is not None:
        return  # another program of the course already answers to this link
    try:
        with session.begin_nested():
            program.resource_link_id = resource_link_id[:255]
            session.flush()
    except IntegrityError:
        # Two first launches raced; the winner recorded it.
        session.refresh(program)


def note_grade_service(session: Session, program: Program, claims: dict[str, Any]) -> bool:
    """Record the AGS endpoint a launch offers for ``program``; True if it changed."""
    claim = claims.get(AGS_CLAIM)
    if not isinstance(claim, dict):
        return False
    scopes = claim.get("scope")
    scopes = sorted({s for s in scopes if isinstance(s, str)}) if isinstance(scopes, list) else []
    lineitems = _url(claim.get("lineitems"))
    lineitem = _url(claim.get("lineitem"))
    if SCOPE_SCORE not in scopes or not (lineitem or (lineitems and SCOPE_LINEITEM in scopes)):
        return False  # no way to post a score for this program
    changed = False
    if program.ags_scopes != scopes:
        program.ags_scopes = scopes
        changed = True
    if lineitems and program.ags_lineitems_url != lineitems:
        program.ags_lineitems_url = lineitems
        changed = True
    if lineitem and program.ags_lineitem_url != lineitem:
        program.ags_lineitem_url = lineitem
        changed = True
    return changed


def _url(value: object) -> str:
    ok = isinstance(value, str) and value.startswith(("https://", "http://"))
    if ok and isinstance(value, str) and len(value) <= URL_MAX:
        return value
    return ""


def open_program(
    session: Session, launch: ValidatedLaunch, identity: LaunchIdentity | RecordedLaunch
) -> Program | None:
    """The program a resource-link launch lands in (None: the course home), noted up to date."""
    recorded = identity if isinstance(identity, RecordedLaunch) else None
    if isinstance(identity, RecordedLaunch):
        identity = identity.identity
    if launch.message_type != RESOURCE_LINK or identity.course_id is None:
        return None
    program = resolve_program(
        session,
        course_id=identity.course_id,
        resource_link_id=launch.resource_link_id,
        claims=launch.claims,
        link_program=recorded,
    )
    if program is None:
        return None
    note_grade_service(session, program, launch.claims)
    _note_link_roster(session, program)
    return program


def _note_link_roster(session: Session, program: Program) -> None:
    """The first launch of a linked program pulls its link's NRPS roster (after commit)."""
    if program.link_roster_synced_at is not None or not program.resource_link_id:
        return
    if not program.course.nrps_url:
        return
    session.flush()
    defer(
        session,
        "workers.jobs.sync_link_roster",
        program.id,
        key=f"link-roster-{program.id}",
        queue=QueueName.LOW,
    )
