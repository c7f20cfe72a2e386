"""Deep Linking pages: the program picker a deep-linking launch lands on, and its answer.

The launch view hands a validated ``LtiDeepLinkingRequest`` to :func:`start_deep_linking`;
the picker posts back to :func:`place_program`, which answers the platform with a signed
``LtiDeepLinkingResponse`` auto-posted to its ``deep_link_return_url``.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request
from flask.typing import ResponseReturnValue

from plugin.db import request_session
from plugin.logs import get_logger
from plugin.lti.deep_linking import (
    DEEP_LINKERS,
    DeepLinkingSettings,
    PickerContext,
    deep_linking_response,
    issue_picker_token,
    read_picker_token,
)
from plugin.lti.launch import DEEP_LINKING_SETTINGS, ValidatedLaunch
from plugin.lti.provisioning import LaunchIdentity
from plugin.lti.session import current_identity, launch_required
from plugin.models import Course, Platform, Program, Track
from plugin.programs.access import same_origin
from plugin.programs.errors import FormInvalid
from plugin.programs.service import create_program, programs_in_course

__all__ = ["blueprint", "start_deep_linking"]

log = get_logger(__name__)
blueprint = Blueprint("lti_deep_link", __name__)


def _refuse(status: int, title: str, advice: str, code: str) -> tuple[str, int]:
    log.warning("lti.deep_link_refused", reason=code, status=status)
    return render_template(
        "error.html",
        status=status,
        title=title,
        advice=advice,
        code=code,
        request_id=g.get("request_id", ""),
    ), status


def start_deep_linking(
    launch: ValidatedLaunch, identity: LaunchIdentity, launch_token: str
) -> ResponseReturnValue:
    """The picker for a validated deep-linking launch, or a page saying why not."""
    if not identity.roles & DEEP_LINKERS:
        return _refuse(
            403,
            "Only instructors can add Preceptor to a course",
            "Adding a mentorship program to a course is for its instructors and course "
            "designers. Open Preceptor from the link your instructor placed in the course.",
            "deep_link_not_instructor",
        )
    if identity.course_id is None:
        return _refuse(
            400,
            "Preceptor can only be added to a course",
            "This request came from outside a course. Add Preceptor from a course's "
            "content or link selection instead.",
            "deep_link_no_course",
        )
    settings = DeepLinkingSettings.from_claim(launch.claims.get(DEEP_LINKING_SETTINGS))
    assert settings is not None  # the launch's deep_linking_settings rule checked it
    if not settings.accepts_resource_link:
        return _refuse(
            400,
            "This place in the course cannot hold a Preceptor program",
            "Preceptor adds LTI resource links; choose a content placement that accepts them "
            "(for example a module item or the course navigation).",
            "deep_link_type_unsupported",
        )
    context = PickerContext(
        user_id=identity.user_id,
        course_id=identity.course_id,
        platform_id=launch.platform.id,
        deployment_id=launch.deployment.deployment_id,
        settings=settings,
    )
    g.launch_token = launch_token
    return _picker(context, errors={}, form={})


def _picker(
    context: PickerContext, *, errors: dict[str, str], form: dict[str, str], status: int = 200
) -> tuple[str, int]:
    session = request_session()
    course = session.get(Course, context.course_id)
    return render_template(
        "lti_deep_link_picker.html",
        course=course,
        programs=programs_in_course(session, context.course_id),
        picker=issue_picker_token(context),
        errors=errors,
        form=form,
        selected_tracks=[Track.CAREER.value] if not form else request.form.getlist("tracks"),
    ), status


@blueprint.post("/lti/deep-link/<int:course_id>")
@launch_required
def place_program(course_id: int) -> ResponseReturnValue:
    """Answer the platform with a link to the chosen (or a new) program of the course."""
    identity = current_identity()
    context = read_picker_token(request.form.get("picker", ""))
    if (
        not same_origin()
        or context is None
        or context.course_id != course_id
        or context.user_id != identity.user_id
        or not identity.roles & DEEP_LINKERS
    ):
        abort(403)
    session = request_session()
    platform = session.get(Platform, context.platform_id)
    if platform is None:
        abort(403)
    program: Program | None
    choice = request.form.get("program", "")
    if choice == "new":
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
            return _picker(context, errors=exc.errors, form=dict(request.form), status=400)
    else:
        program = session.get(Program, int(choice)) if choice.isdigit() else None
        if program is None or program.course_id != course_id or program.archived_at is not None:
            return _picker(
                context,
                errors={"program": "Choose one of the programs listed."},
                form={},
                status=400,
            )
    from plugin.lti.views import launch_url

    token = deep_linking_response(
        session, platform=platform, context=context, program=program, launch_url=launch_url()
    )
    session.commit()
    log.info("lti.deep_linked", course_id=course_id, program_id=program.id)
    return render_template(
        "lti_deep_link_return.html",
        action=context.settings.return_url,
        jwt=token,
        program=program,
    )
