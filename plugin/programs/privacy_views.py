"""Coordinator routes for deletion requests (registered on the coordinator blueprint).

The list shows who asked for their data to be deleted and has not been erased yet; "Erase"
(POST, with a confirmation box) runs :func:`plugin.programs.erasure.erase_participant`.
The participant id is looked up inside the program, so another program's id answers 404.
"""

from __future__ import annotations

from flask import abort, render_template, request
from flask.typing import ResponseReturnValue

from plugin.db import request_session
from plugin.models.program import ERASED_NAME
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.coordination import participant_in_program
from plugin.programs.coordinator_views import back, blueprint
from plugin.programs.erasure import erase_participant, pending_deletion_requests

__all__: list[str] = []


def _requests_page(
    access: ProgramAccess, errors: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    requests = pending_deletion_requests(request_session(), access.program.id)
    return render_template(
        "coordinator/deletion_requests.html",
        access=access,
        program=access.program,
        requests=requests,
        errors=errors,
        erased_name=ERASED_NAME,
    ), status


@blueprint.get("/deletion-requests")
@program_view(coordinator=True)
def deletion_requests(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Participants who asked for their data to be deleted, waiting to be erased."""
    return _requests_page(access, {})


@blueprint.post("/people/<int:participant_id>/erase")
@program_view(coordinator=True)
def erase(access: ProgramAccess, program_id: int, participant_id: int) -> ResponseReturnValue:
    """Erase one participant's personal data in this program (idempotent)."""
    session = request_session()
    person = participant_in_program(session, access.program, participant_id)
    if person is None:
        abort(404)
    if request.form.get("confirm") != "yes":
        message = "Tick the box to confirm the erasure; it cannot be undone."
        return _requests_page(access, {f"confirm-{person.id}": message}, 400)
    erased = erase_participant(session, person, actor_user_id=access.user.id)
    session.commit()
    notice = "erased" if erased else "already_erased"
    return back("coordinator.deletion_requests", notice, program_id=program_id)
