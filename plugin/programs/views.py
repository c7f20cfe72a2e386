"""Program pages for every role: the course's program list and each program's home.

Links and forms carry the launch token (``lt``): templates build links with ``purl()``
and forms include ``{{ lt_field() }}``.
"""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup, escape

from plugin.db import request_session
from plugin.lti.roles import CourseRole
from plugin.lti.session import current_identity, launch_required
from plugin.models import Course, Track
from plugin.programs.access import (
    COORDINATOR_COURSE_ROLES,
    ProgramAccess,
    program_view,
    same_origin,
)
from plugin.programs.errors import FormInvalid
from plugin.programs.service import create_program, programs_in_course

__all__ = ["blueprint"]

blueprint = Blueprint("programs", __name__)

ROLE_LABELS = {
    CourseRole.INSTRUCTOR: "instructor",
    CourseRole.TEACHING_ASSISTANT: "teaching assistant",
    CourseRole.CONTENT_DEVELOPER: "course designer",
    CourseRole.LEARNER: "learner",
    CourseRole.ADMINISTRATOR: "administrator",
}


_TRACKS: Final = list(Track)


@blueprint.app_context_processor
def _launch_helpers() -> dict[str, Any]:
    def purl(endpoint: str, **values: Any) -> str:
        """A URL that keeps the launch token (pages are not carried by cookies)."""
        token = g.get("launch_token")
        if token:
            values["lt"] = token
        return url_for(endpoint, **values)

    def lt_field() -> Markup:
        token = g.get("launch_token", "")
        return Markup('<input type="hidden" name="lt" value="{}">').format(escape(token))

    return {"purl": purl, "lt_field": lt_field, "tracks": _TRACKS}


@blueprint.get("/courses/<int:course_id>/")
@launch_required
def course_home(course_id: int) -> ResponseReturnValue:
    """The course's programs; a person with one program to go to goes straight there."""
    session = request_session()
    course = session.get(Course, course_id)
    if course is None:
        abort(404)
    identity = current_identity()
    programs = programs_in_course(session, course_id)
    is_coordinator = bool(identity.roles & COORDINATOR_COURSE_ROLES)
    if len(programs) == 1 and not is_coordinator:
        return redirect(
            url_for("programs.program_home", program_id=programs[0].id, lt=g.launch_token)
        )
    return render_template(
        "programs/course_home.html",
        course=course,
        programs=programs,
        roles=sorted(ROLE_LABELS[r] for r in identity.roles),
        is_coordinator=is_coordinator,
        errors={},
        form={},
        selected_tracks=[Track.CAREER.value],
    )


@blueprint.post("/courses/<int:course_id>/programs")
@launch_required
def new_program(course_id: int) -> ResponseReturnValue:
    """A course coordinator creates a program."""
    identity = current_identity()
    if not same_origin() or not identity.roles & COORDINATOR_COURSE_ROLES:
        abort(403)
    session = request_session()
    course = session.get(Course, course_id)
    if course is None:
        abort(404)
    try:
        program = create_program(
            session,
            course_id=course_id,
            title=request.form.get("title", ""),
            tracks=request.form.getlist("tracks"),
            actor_user_id=identity.user_id,
        )
    except FormInvalid as exc:
        session.rollback()
        return render_template(
            "programs/course_home.html",
            course=course,
            programs=programs_in_course(session, course_id),
            roles=sorted(ROLE_LABELS[r] for r in identity.roles),
            is_coordinator=True,
            errors=exc.errors,
            form=request.form,
            selected_tracks=request.form.getlist("tracks"),
        ), 400
    session.commit()
    return redirect(url_for("programs.program_home", program_id=program.id, lt=g.launch_token), 303)


@blueprint.get("/programs/<int:program_id>/")
@program_view()
def program_home(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """The program's home for this person: what to do next in each of their roles."""
    from plugin.programs.participant_views import home_context

    return render_template(
        "programs/home.html", access=access, program=access.program, **home_context(access)
    )
