"""Helpers shared by the participant pages: today in the person's zone, redirects, refusals,
role guards."""

from __future__ import annotations

from datetime import date
from typing import Any, NoReturn
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Response, abort, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from plugin.db import utcnow
from plugin.models import Participant
from plugin.programs.access import ProgramAccess

__all__ = ["back_home", "query_string", "refuse", "require_mentee", "require_mentor", "today_for"]


def query_string(**values: Any) -> str:
    return urlencode(values)


def today_for(participant: Participant | None) -> date:
    """Today in the person's own time zone (a target date "in the future" is theirs)."""
    zone = participant.profile.time_zone if participant and participant.profile else "UTC"
    return utcnow().astimezone(ZoneInfo(zone)).date()


def back_home(program_id: int) -> ResponseReturnValue:
    """See-other to the program home, keeping the launch token."""
    return redirect(url_for("programs.program_home", program_id=program_id, lt=g.launch_token), 303)


def refuse(status: int, message: str) -> NoReturn:
    """Stop with a page that says why (``message`` is shown to the person)."""
    access: ProgramAccess | None = g.get("program_access")
    program = access.program if access is not None else None
    page = render_template("programs/refused.html", message=message, program=program)
    abort(Response(page, status))


def require_mentee(access: ProgramAccess) -> Participant:
    """The enrolled mentee, or 403."""
    if not access.is_mentee or access.participant is None:
        abort(403)
    return access.participant


def require_mentor(access: ProgramAccess) -> Participant:
    """The enrolled mentor, or 403."""
    if not access.is_mentor or access.participant is None:
        abort(403)
    return access.participant
