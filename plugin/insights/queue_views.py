"""Coordinator pages: the attention queue, marking an item handled, a relationship's feedback.

Every route is a ``program_view(coordinator=True)``: a token for another course answers
404, someone who does not coordinate the program 403, a relationship of another program 404.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from plugin.db import request_session, utcnow
from plugin.insights.feedback import HEALTH_SCALE, relationship_feedback
from plugin.insights.queue import attention_queue, mark_handled
from plugin.models import Relationship
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.errors import FormInvalid, StateConflict
from plugin.programs.view_helpers import refuse

__all__ = ["blueprint"]

blueprint = Blueprint("attention", __name__, url_prefix="/programs/<int:program_id>/coordinator")


def _render_queue(
    access: ProgramAccess, errors: dict[str, str], failed_id: int | None = None, note: str = ""
) -> ResponseReturnValue:
    queue = attention_queue(request_session(), access.program, utcnow())
    return render_template(
        "feedback/attention.html",
        access=access,
        program=access.program,
        queue=queue,
        errors=errors,
        failed_id=failed_id,
        failed_note=note,
        handled_notice=request.args.get("handled") == "1",
    ), 400 if errors else 200


@blueprint.get("/attention")
@program_view(coordinator=True)
def attention(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Relationships that look stalled or unhappy, worst first, with the signals that raised
    each; and those handled whose signals have not cleared yet."""
    return _render_queue(access, {})


@blueprint.post("/attention/<int:relationship_id>/handled")
@program_view(coordinator=True)
def handled(access: ProgramAccess, program_id: int, relationship_id: int) -> ResponseReturnValue:
    """Mark a relationship handled, with a note (audited)."""
    session = request_session()
    note = request.form.get("note", "")
    try:
        mark_handled(
            session,
            access.program,
            relationship_id,
            note=note,
            actor_user_id=access.user.id,
            now=utcnow(),
        )
    except LookupError:
        abort(404)
    except FormInvalid as exc:
        session.rollback()
        return _render_queue(access, exc.errors, relationship_id, note)
    except StateConflict as exc:
        session.rollback()
        refuse(409, f"{exc}.")
    session.commit()
    return redirect(
        url_for("attention.attention", program_id=program_id, lt=g.launch_token, handled=1), 303
    )


@blueprint.get("/relationships/<int:relationship_id>/feedback")
@program_view(coordinator=True)
def relationship_answers(
    access: ProgramAccess, program_id: int, relationship_id: int
) -> ResponseReturnValue:
    """Everything both sides said about a relationship: meeting feedback (private and
    shared), health checks and evaluations."""
    session = request_session()
    rel = session.get(Relationship, relationship_id)
    if rel is None or rel.program_id != access.program.id:
        abort(404)
    return render_template(
        "feedback/relationship.html",
        access=access,
        program=access.program,
        relationship=rel,
        answers=relationship_feedback(session, rel),
        scale=dict(HEALTH_SCALE),
        errors={},
    )
