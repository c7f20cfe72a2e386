"""A participant's notification preferences page (reached from the program navigation)."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue

from plugin.db import request_session
from plugin.followups.channels import CHANNELS
from plugin.followups.preferences import (
    CAP_RANGE,
    PreferenceView,
    kinds_for,
    preference_view,
    update_preferences,
)
from plugin.followups.unsubscribe import preference_for
from plugin.models import NotificationPreference, Participant
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.errors import FormInvalid

__all__ = ["blueprint"]

blueprint = Blueprint("preferences", __name__)


def _participant(access: ProgramAccess) -> Participant:
    if not access.enrolled or access.participant is None:
        abort(403)
    return access.participant


def _render(
    access: ProgramAccess,
    values: PreferenceView,
    errors: Mapping[str, str],
    *,
    saved: bool = False,
    status: int = 200,
) -> ResponseReturnValue:
    participant = _participant(access)
    page = render_template(
        "followups/preferences.html",
        access=access,
        program=access.program,
        values=values,
        errors=errors,
        saved=saved,
        kinds=kinds_for(participant),
        channels=list(CHANNELS.items()),
        cap_range=CAP_RANGE,
    )
    return page, status


@blueprint.get("/programs/<int:program_id>/notifications/preferences")
@program_view()
def preferences(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """What I receive, and how."""
    participant = _participant(access)
    stored = request_session().get(NotificationPreference, participant.id)
    # No row yet: show the defaults without writing one (a GET changes nothing).
    values = preference_view(stored or NotificationPreference(muted_kinds=[]), participant)
    return _render(access, values, {})


@blueprint.post("/programs/<int:program_id>/notifications/preferences")
@program_view()
def save_preferences(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Save the form whole, or show what to fix and change nothing."""
    participant = _participant(access)
    session = request_session()
    form = {
        k: request.form.getlist(k) if k == "kinds" else request.form.get(k, "")
        for k in request.form
    }
    form.setdefault("kinds", [])
    try:
        preference = update_preferences(session, participant, form)
    except FormInvalid as exc:
        session.rollback()
        raw = request.form
        values = PreferenceView(
            channel=raw.get("channel", ""),
            wanted=raw.getlist("kinds"),
            quiet_start=raw.get("quiet_start", ""),
            quiet_end=raw.get("quiet_end", ""),
            daily_cap=raw.get("daily_cap", ""),
            unsubscribed=preference_for(session, participant.id).unsubscribed_at is not None,
        )
        return _render(access, values, exc.errors, status=400)
    values = preference_view(preference, participant)
    session.commit()
    return _render(access, values, {}, saved=True)
