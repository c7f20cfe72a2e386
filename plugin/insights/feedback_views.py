"""Participant feedback pages: after a meeting, the periodic health check, the evaluation.

Each page opens only for the people it asks (a meeting's attendees; a relationship's mentee
and mentor); anyone else, and any id from another program, gets 404. A form with bad input
is shown again with messages (400) and nothing is written; an occasion that is not open
(meeting not started, deadline passed, relationship not closed) says why (409).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from plugin.db import request_session, utcnow
from plugin.insights import feedback
from plugin.models import (
    FeedbackVisibility,
    GoalsMet,
    Meeting,
    Participant,
    Relationship,
)
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.errors import FormInvalid, StateConflict
from plugin.programs.view_helpers import refuse

__all__ = ["blueprint"]

blueprint = Blueprint("feedback", __name__, url_prefix="/programs/<int:program_id>")


def _me(access: ProgramAccess) -> Participant | None:
    return access.participant if access.enrolled else None


def _saved(endpoint: str, **values: Any) -> ResponseReturnValue:
    return redirect(url_for(endpoint, lt=g.launch_token, saved=1, **values), 303)


# --- after a meeting ----------------------------------------------------------------------


def _attended_meeting(access: ProgramAccess, meeting_id: int) -> tuple[Meeting, Participant]:
    meeting = request_session().get(Meeting, meeting_id)
    me = _me(access)
    if (
        meeting is None
        or meeting.program_id != access.program.id
        or me is None
        or not feedback.may_give_meeting_feedback(meeting, me)
    ):
        abort(404)
    return meeting, me


def _render_meeting(
    access: ProgramAccess,
    meeting: Meeting,
    me: Participant,
    form: Mapping[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> ResponseReturnValue:
    session = request_session()
    now = utcnow()
    return render_template(
        "feedback/meeting.html",
        access=access,
        program=access.program,
        meeting=meeting,
        state=feedback.meeting_feedback_state(meeting, now),
        deadline=feedback.meeting_feedback_deadline(meeting),
        shared=feedback.shared_feedback_for(session, meeting, me),
        visibilities=[(v.value, v.label) for v in FeedbackVisibility],
        viewer_zone=me.profile.time_zone if me.profile else "UTC",
        form=form,
        errors=errors,
        saved=request.args.get("saved") == "1",
    ), status


def _meeting_form(row: Any) -> dict[str, str]:
    if row is None:
        return {"visibility": FeedbackVisibility.PRIVATE.value}
    return {
        "rating": str(row.rating),
        "useful": "yes" if row.useful else "no",
        "comment": row.comment,
        "visibility": row.visibility.value,
    }


@blueprint.route("/meetings/<int:meeting_id>/feedback", methods=["GET", "POST"])
@program_view()
def meeting_feedback(
    access: ProgramAccess, program_id: int, meeting_id: int
) -> ResponseReturnValue:
    """An attendee rates a meeting: 1-5, useful or not, a comment, and who may read it."""
    meeting, me = _attended_meeting(access, meeting_id)
    session = request_session()
    if request.method == "GET":
        row = feedback.meeting_feedback_of(session, meeting, me)
        return _render_meeting(access, meeting, me, _meeting_form(row), {})
    try:
        feedback.save_meeting_feedback(session, meeting, me, request.form, utcnow())
    except FormInvalid as exc:
        session.rollback()
        meeting, me = _attended_meeting(access, meeting_id)
        return _render_meeting(access, meeting, me, request.form, exc.errors, 400)
    except StateConflict as exc:
        session.rollback()
        refuse(409, f"{exc}.")
    session.commit()
    return _saved("feedback.meeting_feedback", program_id=program_id, meeting_id=meeting_id)


# --- relationships: health check and evaluation --------------------------------------------


def _my_relationship(
    access: ProgramAccess, relationship_id: int
) -> tuple[Relationship, Participant]:
    rel = request_session().get(Relationship, relationship_id)
    me = _me(access)
    if rel is None or rel.program_id != access.program.id or not feedback.is_partner(rel, me):
        abort(404)
    assert me is not None
    return rel, me


def _partner_of(rel: Relationship, me: Participant) -> Participant:
    return rel.mentor if me.id == rel.mentee_id else rel.mentee


def _render_relationship_form(
    template: str,
    access: ProgramAccess,
    rel: Relationship,
    me: Participant,
    form: Mapping[str, str],
    errors: dict[str, str],
    status: int = 200,
    **extra: Any,
) -> ResponseReturnValue:
    return render_template(
        template,
        access=access,
        program=access.program,
        relationship=rel,
        partner=_partner_of(rel, me),
        form=form,
        errors=errors,
        saved=request.args.get("saved") == "1",
        **extra,
    ), status


def _render_health(
    access: ProgramAccess,
    rel: Relationship,
    me: Participant,
    form: Mapping[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> ResponseReturnValue:
    return _render_relationship_form(
        "feedback/health.html",
        access,
        rel,
        me,
        form,
        errors,
        status,
        scale=feedback.HEALTH_SCALE,
        open=rel.status.value in ("active", "paused"),
    )


@blueprint.route("/relationships/<int:relationship_id>/health", methods=["GET", "POST"])
@program_view()
def health_check(
    access: ProgramAccess, program_id: int, relationship_id: int
) -> ResponseReturnValue:
    """One side of a relationship says how it is going (read by coordinators only)."""
    rel, me = _my_relationship(access, relationship_id)
    session = request_session()
    if request.method == "GET":
        period = feedback.health_period(rel, access.program, utcnow())
        row = feedback.health_check_of(session, rel, me, period)
        form = {"score": str(row.score), "comment": row.comment} if row else {}
        return _render_health(access, rel, me, form, {})
    try:
        feedback.save_health_check(session, rel, me, request.form, utcnow())
    except FormInvalid as exc:
        session.rollback()
        rel, me = _my_relationship(access, relationship_id)
        return _render_health(access, rel, me, request.form, exc.errors, 400)
    except StateConflict as exc:
        session.rollback()
        refuse(409, f"{exc}.")
    session.commit()
    return _saved("feedback.health_check", program_id=program_id, relationship_id=relationship_id)


def _render_evaluation(
    access: ProgramAccess,
    rel: Relationship,
    me: Participant,
    form: Mapping[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> ResponseReturnValue:
    return _render_relationship_form(
        "feedback/evaluation.html",
        access,
        rel,
        me,
        form,
        errors,
        status,
        goals_met=[(v.value, v.label) for v in GoalsMet],
        open=feedback.may_evaluate(rel, utcnow()),
        deadline=feedback.evaluation_deadline(rel),
    )


@blueprint.route("/relationships/<int:relationship_id>/evaluation", methods=["GET", "POST"])
@program_view()
def evaluation(access: ProgramAccess, program_id: int, relationship_id: int) -> ResponseReturnValue:
    """One side evaluates a relationship that closed (read by coordinators only)."""
    rel, me = _my_relationship(access, relationship_id)
    session = request_session()
    if request.method == "GET":
        row = feedback.evaluation_of(session, rel, me)
        form = (
            {
                "goals_met": row.goals_met.value,
                "would_recommend": "yes" if row.would_recommend else "no",
                "comment": row.comment,
            }
            if row
            else {}
        )
        return _render_evaluation(access, rel, me, form, {})
    try:
        feedback.save_evaluation(session, rel, me, request.form, utcnow())
    except FormInvalid as exc:
        session.rollback()
        rel, me = _my_relationship(access, relationship_id)
        return _render_evaluation(access, rel, me, request.form, exc.errors, 400)
    except StateConflict as exc:
        session.rollback()
        refuse(409, f"{exc}.")
    session.commit()
    return _saved("feedback.evaluation", program_id=program_id, relationship_id=relationship_id)
