"""Connect a calendar: start the Google or Microsoft sign-in, and take its answer back.

The start is a program page (launch token, same-origin POST). The callbacks are not: the
person returns from the provider in a top-level window without their launch token, and
the signed, single-use state names the enrollment (:mod:`plugin.meetings.connections`).
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from plugin.db import request_session
from plugin.meetings.connections import ConnectFailed, finish_connect, start_connect
from plugin.programs.access import ProgramAccess, program_view

__all__ = ["blueprint"]

blueprint = Blueprint("calendar_connect", __name__)


def _callback_url(provider: str) -> str:
    # Registered with the provider as is: the same URL for every program and person.
    return url_for(f"calendar_connect.{provider}_callback", _external=True)


@blueprint.post("/programs/<int:program_id>/calendar/connect/<any(google, microsoft):provider>")
@program_view()
def connect_calendar(access: ProgramAccess, program_id: int, provider: str) -> ResponseReturnValue:
    """Send the person to the provider's sign-in page."""
    if not access.enrolled or access.participant is None:
        abort(404)
    start = start_connect(access.participant, provider, redirect_uri=_callback_url(provider))
    return redirect(start.url, 303)


def _finish(provider: str, answer: dict[str, str]) -> ResponseReturnValue:
    session = request_session()
    try:
        connection = finish_connect(session, provider, answer, redirect_uri=_callback_url(provider))
    except ConnectFailed as exc:
        return render_template(
            "error.html", title="Calendar not connected", advice=str(exc), status=400
        ), 400
    session.commit()
    return render_template(
        "error.html",
        title="Calendar connected",
        advice=f"Your meetings will appear in your {connection.provider.capitalize()} calendar "
        f"({connection.account}). You can close this window and return to Preceptor.",
    )


@blueprint.get("/calendars/connect/google/callback")
def google_callback() -> ResponseReturnValue:
    """Google's redirect back: ``code`` and ``state`` in the query."""
    return _finish("google", request.args.to_dict())


@blueprint.post("/calendars/connect/microsoft/callback")
def microsoft_callback() -> ResponseReturnValue:
    """Microsoft's ``form_post`` back: ``code``, ``state`` and more in the body."""
    return _finish("microsoft", request.form.to_dict())
