"""Coordinator routes for peer circles (registered on the coordinator blueprint)."""

from __future__ import annotations

from typing import Any

from flask import abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from plugin.db import request_session
from plugin.models import Circle, Participant, ParticipantStatus
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.circles import (
    add_circle_members,
    circle_in_program,
    circles_with_sizes,
    close_circle,
    create_circle,
    remove_circle_member,
)
from plugin.programs.coordinator_views import blueprint
from plugin.programs.errors import FormInvalid, ProgramError

__all__: list[str] = []


def _enrolled(access: ProgramAccess, *, mentors: bool) -> list[Participant]:
    flag = Participant.is_mentor if mentors else Participant.is_mentee
    people = list(
        request_session()
        .scalars(
            select(Participant)
            .where(
                Participant.program_id == access.program.id,
                Participant.status == ParticipantStatus.ACTIVE,
                flag.is_(True),
            )
            .options(joinedload(Participant.user))
        )
        .unique()
    )
    return sorted(people, key=lambda p: p.display_name.lower())


def _list_page(
    access: ProgramAccess, form: dict[str, str], errors: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    return render_template(
        "coordinator/circles.html",
        access=access,
        program=access.program,
        circles=circles_with_sizes(request_session(), access.program),
        mentors=_enrolled(access, mentors=True),
        form=form,
        errors=errors,
    ), status


def _to_circle(program_id: int, circle_id: int, notice: str) -> ResponseReturnValue:
    return redirect(
        url_for(
            "coordinator.circle",
            program_id=program_id,
            circle_id=circle_id,
            lt=g.launch_token,
            notice=notice,
        ),
        303,
    )


@blueprint.get("/circles")
@program_view(coordinator=True)
def circles(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """The program's peer circles and a form to start one."""
    return _list_page(access, {}, {})


@blueprint.post("/circles")
@program_view(coordinator=True)
def circle_create(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    session = request_session()
    form = {k: request.form.get(k, "") for k in ("name", "track", "facilitator_id")}
    raw = form["facilitator_id"]
    try:
        circle = create_circle(
            session,
            access.program,
            name=form["name"],
            track=form["track"],
            facilitator_id=int(raw) if raw.isdigit() else (None if not raw else -1),
            actor_user_id=access.user.id,
        )
    except FormInvalid as exc:
        session.rollback()
        return _list_page(access, form, exc.errors, 400)
    session.commit()
    return _to_circle(program_id, circle.id, "circle_created")


def _circle_page(
    access: ProgramAccess, circle: Circle, errors: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    current = {m.participant_id for m in circle.members if m.left_at is None}
    context: dict[str, Any] = {
        "access": access,
        "program": access.program,
        "circle": circle,
        "members": [m for m in circle.members if m.left_at is None],
        "candidates": [p for p in _enrolled(access, mentors=False) if p.id not in current],
        "errors": errors,
    }
    return render_template("coordinator/circle.html", **context), status


def _circle_or_404(access: ProgramAccess, circle_id: int) -> Circle:
    circle = circle_in_program(request_session(), access.program, circle_id)
    if circle is None:
        abort(404)
    return circle


@blueprint.get("/circles/<int:circle_id>")
@program_view(coordinator=True)
def circle(access: ProgramAccess, program_id: int, circle_id: int) -> ResponseReturnValue:
    """One circle: its members, adding and removing mentees, closing it."""
    return _circle_page(access, _circle_or_404(access, circle_id), {})


@blueprint.post("/circles/<int:circle_id>/members")
@program_view(coordinator=True)
def circle_add(access: ProgramAccess, program_id: int, circle_id: int) -> ResponseReturnValue:
    session = request_session()
    found = _circle_or_404(access, circle_id)
    raw = request.form.getlist("members")
    try:
        if not all(v.isdigit() for v in raw):
            raise FormInvalid({"members": "Choose mentees from the list."})
        add_circle_members(
            session, access.program, found, [int(v) for v in raw], actor_user_id=access.user.id
        )
    except FormInvalid as exc:
        session.rollback()
        return _circle_page(access, _circle_or_404(access, circle_id), exc.errors, 400)
    except ProgramError as exc:
        session.rollback()
        return _circle_page(access, _circle_or_404(access, circle_id), {"members": str(exc)}, 409)
    session.commit()
    return _to_circle(program_id, circle_id, "members_added")


@blueprint.post("/circles/<int:circle_id>/members/<int:participant_id>/remove")
@program_view(coordinator=True)
def circle_remove(
    access: ProgramAccess, program_id: int, circle_id: int, participant_id: int
) -> ResponseReturnValue:
    session = request_session()
    found = _circle_or_404(access, circle_id)
    try:
        remove_circle_member(
            session, access.program, found, participant_id, actor_user_id=access.user.id
        )
    except ProgramError:
        session.rollback()
        abort(404)
    session.commit()
    return _to_circle(program_id, circle_id, "member_removed")


@blueprint.post("/circles/<int:circle_id>/close")
@program_view(coordinator=True)
def circle_close(access: ProgramAccess, program_id: int, circle_id: int) -> ResponseReturnValue:
    session = request_session()
    found = _circle_or_404(access, circle_id)
    try:
        close_circle(session, access.program, found, actor_user_id=access.user.id)
    except ProgramError as exc:
        session.rollback()
        return _circle_page(access, found, {"close": str(exc)}, 409)
    session.commit()
    return _to_circle(program_id, circle_id, "circle_closed")
