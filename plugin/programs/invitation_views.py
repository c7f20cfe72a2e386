"""The page an invited external mentor opens from their link: accept and say who they are.

GET only shows the invitation (mail scanners and link previews fetch links); POST accepts
it. The person needs no launch: the signed link is their proof. Opened from a launch in
the program's course (``lt``), the invitation binds to that LMS user instead.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from plugin.db import request_session
from plugin.lti.session import issue_launch_token, read_launch_token
from plugin.programs.access import same_origin
from plugin.programs.errors import FormInvalid, ProgramError
from plugin.programs.invitations import InvitationInvalid, accept_invitation, read_invitation

__all__ = ["blueprint"]

blueprint = Blueprint("invitations", __name__)


@blueprint.route("/invitations/<token>", methods=["GET", "POST"])
def accept(token: str) -> ResponseReturnValue:
    """Show an invitation (GET) or accept it (POST), then open the program."""
    session = request_session()
    secret = current_app.config["SECRET_KEY"]
    launch_token = (request.form.get("lt") or request.args.get("lt") or "").strip()
    launched = read_launch_token(launch_token) if launch_token else None
    try:
        participant = read_invitation(session, secret, token)
    except InvitationInvalid as exc:
        return render_template("invitations/invalid.html", message=str(exc)), 410
    form = {"name": participant.invite_name, "bio": ""}
    if request.method == "GET":
        return render_template(
            "invitations/accept.html",
            participant=participant,
            form=form,
            errors={},
            launch_token=launch_token,
        )
    if not same_origin():
        abort(403)
    form = {"name": request.form.get("name", ""), "bio": request.form.get("bio", "")}
    try:
        accepted = accept_invitation(
            session, participant, name=form["name"], bio=form["bio"], launched=launched
        )
    except FormInvalid as exc:
        session.rollback()
        return render_template(
            "invitations/accept.html",
            participant=participant,
            form=form,
            errors=exc.errors,
            launch_token=launch_token,
        ), 400
    except ProgramError as exc:
        session.rollback()
        return render_template("invitations/invalid.html", message=str(exc)), 409
    session.commit()
    lt = issue_launch_token(accepted.identity)
    return redirect(
        url_for("programs.program_home", program_id=accepted.participant.program_id, lt=lt), 303
    )
