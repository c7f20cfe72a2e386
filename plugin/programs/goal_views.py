"""Goal pages: a mentee writes a SMART goal, the mentor agrees, both check in, the mentee
changes or drops it; each goal is seen only by the people it is shared with (others get
404)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from plugin.db import request_session
from plugin.models import Goal, Participant
from plugin.programs import goal_changes, goals
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.errors import FormInvalid, NotAllowed, StateConflict
from plugin.programs.view_helpers import refuse, require_mentee, today_for

__all__ = ["blueprint"]

blueprint = Blueprint("goals", __name__)


def _visible_goal(access: ProgramAccess, goal_id: int) -> Goal:
    goal = request_session().get(Goal, goal_id)
    if (
        goal is None
        or goal.program_id != access.program.id
        or access.participant is None
        or not access.enrolled
        or access.participant.id not in goals.goal_viewers(goal)
    ):
        abort(404)
    return goal


def _locked(goal: Goal) -> Goal:
    """``goal`` read again under a row lock (PostgreSQL), so an edit and an agreement to the
    same goal take turns and the second sees what the first did."""
    request_session().refresh(goal, with_for_update=True)
    return goal


def _render_new_goal(
    access: ProgramAccess,
    form: MultiDict[str, str] | dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> ResponseReturnValue:
    mentee = require_mentee(access)
    relationships, circles = goals.shareable_scopes(request_session(), mentee)
    return render_template(
        "programs/goal_new.html",
        access=access,
        program=access.program,
        relationships=relationships,
        circles=circles,
        form=form,
        errors=errors,
    ), status


@blueprint.get("/programs/<int:program_id>/goals/new")
@program_view()
def new_goal(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    return _render_new_goal(access, {}, {})


@blueprint.post("/programs/<int:program_id>/goals")
@program_view()
def create_goal(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """A mentee writes a SMART goal shared with one mentor or circle."""
    mentee = require_mentee(access)
    session = request_session()
    form = request.form
    try:
        goal = goals.create_goal(
            session,
            owner=mentee,
            scope=form.get("scope", ""),
            title=form.get("title", ""),
            measure=form.get("measure", ""),
            target_date=form.get("target_date", ""),
            today=today_for(mentee),
        )
    except FormInvalid as exc:
        session.rollback()
        return _render_new_goal(access, form, exc.errors, 400)
    session.commit()
    return redirect(
        url_for("goals.goal_page", program_id=program_id, goal_id=goal.id, lt=g.launch_token),
        303,
    )


def _render_goal(
    access: ProgramAccess,
    goal: Goal,
    errors: dict[str, str],
    form: Any = None,
    status: int = 200,
    *,
    open_form: str = "",
) -> ResponseReturnValue:
    """The goal page; ``open_form`` ("edit" or "drop") shows that form open, with ``errors``."""
    session = request_session()
    authors = {
        p.id: p.display_name
        for p in session.query(Participant).filter(
            Participant.id.in_({u.author_id for u in goal.updates if u.author_id})
        )
    }
    return render_template(
        "programs/goal.html",
        access=access,
        program=access.program,
        goal=goal,
        authors=authors,
        may_agree=access.participant is not None
        and access.participant.id in goals.goal_agreers(goal)
        and goal.status.value == "proposed",
        may_change=access.participant is not None
        and access.participant.id == goal.owner_id
        and goal.status in goal_changes.OPEN_STATUSES,
        content_version=goal_changes.content_version(goal),
        change_labels=goal_changes.CHANGE_LABELS,
        open_form=open_form,
        errors=errors,
        form=form or {},
    ), status


@blueprint.get("/programs/<int:program_id>/goals/<int:goal_id>")
@program_view()
def goal_page(access: ProgramAccess, program_id: int, goal_id: int) -> ResponseReturnValue:
    """A goal with its history and the check-in form (owner and partners only)."""
    return _render_goal(access, _visible_goal(access, goal_id), {})


@blueprint.post("/programs/<int:program_id>/goals/<int:goal_id>/agree")
@program_view()
def agree_goal(access: ProgramAccess, program_id: int, goal_id: int) -> ResponseReturnValue:
    goal = _locked(_visible_goal(access, goal_id))
    assert access.participant is not None
    session = request_session()
    seen = request.form.get("version", "").strip()
    if seen and seen != str(goal_changes.content_version(goal)):
        refuse(
            409,
            "The mentee changed this goal after you opened it. Read the new version on the "
            "goal's page and agree to it there.",
        )
    try:
        goals.agree_goal(session, goal, actor=access.participant)
    except NotAllowed:
        abort(403)
    except StateConflict as exc:
        session.rollback()
        refuse(409, f"{exc}.")
    session.commit()
    return redirect(
        url_for("goals.goal_page", program_id=program_id, goal_id=goal.id, lt=g.launch_token),
        303,
    )


@blueprint.post("/programs/<int:program_id>/goals/<int:goal_id>/checkins")
@program_view()
def goal_checkin(access: ProgramAccess, program_id: int, goal_id: int) -> ResponseReturnValue:
    goal = _locked(_visible_goal(access, goal_id))
    assert access.participant is not None
    session = request_session()
    try:
        goals.add_checkin(
            session,
            goal,
            actor=access.participant,
            progress=request.form.get("progress", ""),
            note=request.form.get("note", ""),
        )
    except FormInvalid as exc:
        session.rollback()
        return _render_goal(access, _visible_goal(access, goal_id), exc.errors, request.form, 400)
    except StateConflict as exc:
        session.rollback()
        refuse(409, f"{exc}.")
    session.commit()
    return redirect(
        url_for("goals.goal_page", program_id=program_id, goal_id=goal.id, lt=g.launch_token),
        303,
    )


def _back_to_goal(program_id: int, goal: Goal) -> ResponseReturnValue:
    return redirect(
        url_for("goals.goal_page", program_id=program_id, goal_id=goal.id, lt=g.launch_token),
        303,
    )


@blueprint.post("/programs/<int:program_id>/goals/<int:goal_id>/edit")
@program_view()
def edit_goal(access: ProgramAccess, program_id: int, goal_id: int) -> ResponseReturnValue:
    """The mentee who wrote the goal changes its what, measure or target date."""
    goal = _locked(_visible_goal(access, goal_id))
    assert access.participant is not None
    session = request_session()
    try:
        goal_changes.edit_goal(
            session,
            goal,
            actor=access.participant,
            title=request.form.get("title", ""),
            measure=request.form.get("measure", ""),
            target_date=request.form.get("target_date", ""),
            today=today_for(access.participant),
        )
    except NotAllowed:
        abort(403)
    except FormInvalid as exc:
        session.rollback()
        goal = _visible_goal(access, goal_id)
        return _render_goal(access, goal, exc.errors, request.form, 400, open_form="edit")
    except StateConflict as exc:
        session.rollback()
        refuse(409, f"{exc}.")
    session.commit()
    return _back_to_goal(program_id, goal)


@blueprint.post("/programs/<int:program_id>/goals/<int:goal_id>/drop")
@program_view()
def drop_goal(access: ProgramAccess, program_id: int, goal_id: int) -> ResponseReturnValue:
    """The mentee who wrote the goal drops it (an optional note says why); it stays, read-only."""
    goal = _locked(_visible_goal(access, goal_id))
    assert access.participant is not None
    session = request_session()
    try:
        goal_changes.drop_goal(
            session, goal, actor=access.participant, note=request.form.get("drop_note", "")
        )
    except NotAllowed:
        abort(403)
    except FormInvalid as exc:
        session.rollback()
        errors = {"drop_note": exc.errors.get("note", str(exc))}
        goal = _visible_goal(access, goal_id)
        return _render_goal(access, goal, errors, request.form, 400, open_form="drop")
    except StateConflict as exc:
        session.rollback()
        refuse(409, f"{exc}.")
    session.commit()
    return _back_to_goal(program_id, goal)
