"""Coordinator routes for CSV exports, the external-mentor import, invitation links and
invitation e-mails.

Registered on the coordinator blueprint (same access rule: this program's coordinators).
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import (
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue

from plugin.db import request_session
from plugin.models import Participant, ParticipantStatus
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.coordination import participant_in_program
from plugin.programs.coordinator_views import blueprint
from plugin.programs.errors import StateConflict
from plugin.programs.invitation_mail import email_new_link, invitation_mails
from plugin.programs.invitations import INVITATION_TTL, invitation_token
from plugin.programs.transfer import (
    IMPORT_COLUMNS,
    ImportRejected,
    export_participants,
    export_relationships,
    import_external_mentors,
)
from plugin.programs.view_helpers import refuse

__all__: list[str] = []

#: Largest import accepted, in characters (500 rows fit easily).
IMPORT_MAX_CHARS = 256 * 1024


def _csv_response(lines: Iterator[str], filename: str) -> Response:
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@blueprint.get("/export/participants.csv")
@program_view(coordinator=True)
def export_participants_csv(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Participants as CSV (no private preferences)."""
    return _csv_response(
        export_participants(request_session(), access.program),
        f"program-{program_id}-participants.csv",
    )


@blueprint.get("/export/relationships.csv")
@program_view(coordinator=True)
def export_relationships_csv(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Relationships as CSV."""
    return _csv_response(
        export_relationships(request_session(), access.program),
        f"program-{program_id}-relationships.csv",
    )


def invitation_url(participant: Participant) -> str:
    token = invitation_token(current_app.config["SECRET_KEY"], participant)
    return url_for("invitations.accept", token=token, _external=True)


@blueprint.route("/import", methods=["GET", "POST"])
@program_view(coordinator=True)
def import_mentors(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Invite mentors from outside the course from a CSV file (all rows or none)."""
    session = request_session()
    context = {
        "access": access,
        "program": access.program,
        "columns": IMPORT_COLUMNS,
        "errors": {},
        "row_errors": [],
        "invited": [],
        "ttl_days": INVITATION_TTL // 86400,
    }
    if request.method == "GET":
        return render_template("coordinator/import.html", **context)
    upload = request.files.get("file")
    text = request.form.get("csv_text", "")
    if upload is not None and upload.filename:
        raw = upload.read(IMPORT_MAX_CHARS + 1)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            context["errors"] = {"file": "Save the file as CSV with UTF-8 encoding and try again."}
            return render_template("coordinator/import.html", **context), 400
    if not text.strip():
        context["errors"] = {"file": "Choose a CSV file or paste its contents."}
        return render_template("coordinator/import.html", **context), 400
    if len(text) > IMPORT_MAX_CHARS:
        context["errors"] = {"file": "The file is too large; split it into smaller files."}
        return render_template("coordinator/import.html", **context), 400
    try:
        created = import_external_mentors(
            session, access.program, text, actor_user_id=access.user.id
        )
    except ImportRejected as exc:
        session.rollback()
        context["errors"] = {"file": f"{exc} Fix the lines below and import again."}
        context["row_errors"] = exc.errors
        context["csv_text"] = text
        return render_template("coordinator/import.html", **context), 400
    session.commit()
    context["invited"] = [(p, invitation_url(p)) for p in created]
    return render_template("coordinator/import.html", **context)


def _invited(access: ProgramAccess, participant_id: int) -> Participant:
    person = participant_in_program(request_session(), access.program, participant_id)
    if person is None or person.status != ParticipantStatus.INVITED:
        abort(404)
    return person


@blueprint.get("/people/<int:participant_id>/invitation")
@program_view(coordinator=True)
def invitation_link(
    access: ProgramAccess, program_id: int, participant_id: int
) -> ResponseReturnValue:
    """A fresh invitation link for an invited mentor who has not accepted yet, the e-mails
    sent so far, and a button to e-mail a new link."""
    person = _invited(access, participant_id)
    return render_template(
        "coordinator/invitation_link.html",
        access=access,
        program=access.program,
        person=person,
        url=invitation_url(person),
        mails=invitation_mails(request_session(), person),
        emailed=request.args.get("emailed") == "1",
        ttl_days=INVITATION_TTL // 86400,
        errors={},
    )


@blueprint.post("/people/<int:participant_id>/invitation")
@program_view(coordinator=True)
def email_invitation(
    access: ProgramAccess, program_id: int, participant_id: int
) -> ResponseReturnValue:
    """E-mail an invited mentor a new link (none is added while one is still on its way)."""
    session = request_session()
    person = _invited(access, participant_id)
    try:
        email_new_link(session, access.program, person, actor_user_id=access.user.id)
    except StateConflict:
        session.rollback()  # they accepted a moment ago
        refuse(409, "This mentor has just accepted their invitation; no e-mail is needed.")
    session.commit()
    return redirect(
        url_for(
            "coordinator.invitation_link",
            program_id=program_id,
            participant_id=participant_id,
            emailed=1,
            lt=g.launch_token,
        ),
        303,
    )
