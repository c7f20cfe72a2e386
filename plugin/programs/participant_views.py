"""Participant pages: enroll and edit a profile, withdraw, notifications, one's own data.

Mentoring (browse, request, answer, shared profiles) is in :mod:`mentoring_views` and goals in
:mod:`goal_views`. Every view goes through :func:`program_view` (launch token for the
program's course, Origin check on POST); each then checks the person's own role and relation
to what they open. A page about something the person may not see answers 404, so ids reveal
nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from plugin.db import request_session
from plugin.lti.session import current_identity, launch_required
from plugin.meetings.scheduling import viewer_zone
from plugin.models import (
    CareerStage,
    MeetingFormat,
    Track,
)
from plugin.programs import dashboards, enrollment, goals, rematch
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.circle_home import my_circles
from plugin.programs.errors import FormInvalid
from plugin.programs.notifications import mark_read, unread_notifications
from plugin.programs.profile_form import (
    DAYS,
    WINDOW_ROWS,
    ProfileInput,
    open_seats_by_track,
    private_preferences,
    validate_profile,
)
from plugin.programs.service import programs_holding_data
from plugin.programs.view_helpers import back_home, query_string, today_for
from plugin.programs.vocabulary import backgrounds, program_vocabulary

__all__ = ["blueprint", "home_context"]

blueprint = Blueprint("participant", __name__)


@blueprint.app_context_processor
def _participant_helpers() -> dict[str, Any]:
    def with_lt(path: str) -> str:
        token = g.get("launch_token")
        return f"{path}?{query_string(lt=token)}" if token else path

    access: ProgramAccess | None = g.get("program_access")
    notifications = []
    if access is not None and access.participant is not None:
        notifications = unread_notifications(request_session(), access.participant)
    return {
        "with_lt": with_lt,
        "notifications": notifications,
        "notifications_program_id": access.program.id if access is not None else None,
    }


def home_context(access: ProgramAccess) -> dict[str, Any]:
    """What the program home shows this person in each of their roles."""
    session = request_session()
    participant = access.participant
    context: dict[str, Any] = {
        "mentee_home": None,
        "mentor_home": None,
        "my_goals": [],
        "my_circles": [],
        "rematches": [],
        "viewer_zone": viewer_zone(participant, access.user),
    }
    if participant is None or not access.enrolled:
        return context
    if access.is_mentee:
        context["mentee_home"] = dashboards.mentee_home(session, access.program, participant)
        context["rematches"] = rematch.mentee_rematches(session, access.program, participant)
    if access.is_mentor:
        context["mentor_home"] = dashboards.mentor_home(session, access.program, participant)
    context["my_circles"] = my_circles(session, access.program, participant)
    context["my_goals"] = goals.goals_visible_to(session, participant)
    return context


# --- enrollment and profile -----------------------------------------------------------------


def _profile_input(form: MultiDict[str, str]) -> ProfileInput:
    roles = form.getlist("roles")
    return ProfileInput(
        as_mentee="mentee" in roles,
        as_mentor="mentor" in roles,
        tracks_wanted=form.getlist("tracks_wanted"),
        tracks_offered=form.getlist("tracks_offered"),
        interests=form.getlist("interests"),
        interests_text=form.get("interests_text", ""),
        goals_text=form.get("goals_text", ""),
        bio=form.get("bio", ""),
        career_stage=form.get("career_stage", ""),
        time_zone=form.get("time_zone", ""),
        windows=[
            (
                form.get(f"window-{i}-day", ""),
                form.get(f"window-{i}-start", ""),
                form.get(f"window-{i}-end", ""),
            )
            for i in range(WINDOW_ROWS)
        ],
        meeting_format=form.get("meeting_format", ""),
        languages=form.get("languages", ""),
        capacity_by_track={t.value: form.get(f"capacity-{t.value}", "") for t in Track},
        capacity_total=form.get("capacity_total", ""),
        seek_backgrounds=form.getlist("seek_backgrounds"),
        share_backgrounds=form.getlist("share_backgrounds"),
    )


def _stored_input(access: ProgramAccess) -> ProfileInput:
    """The form pre-filled from the stored profile (or empty for a newcomer)."""
    participant = access.participant
    profile = participant.profile if participant is not None else None
    # Someone who withdrew finds their old answers (they may re-enroll with them).
    if participant is None or profile is None:
        return ProfileInput(
            as_mentee=access.may_enroll_as_mentee and not access.may_enroll_as_mentor,
            as_mentor=access.may_enroll_as_mentor and not access.may_enroll_as_mentee,
            languages="en",
        )
    prefs = private_preferences(profile.private_preferences)
    windows = [(str(w["day"]), str(w["start"]), str(w["end"])) for w in profile.availability]
    return ProfileInput(
        as_mentee=participant.is_mentee,
        as_mentor=participant.is_mentor,
        tracks_wanted=list(profile.tracks_wanted),
        tracks_offered=list(profile.tracks_offered),
        interests=list(profile.interests),
        interests_text=profile.interests_text,
        goals_text=profile.goals_text,
        bio=profile.bio,
        career_stage=profile.career_stage.value if profile.career_stage else "",
        time_zone=profile.time_zone,
        windows=windows,
        meeting_format=profile.meeting_format.value,
        languages=", ".join(profile.languages),
        capacity_by_track={k: str(v) for k, v in profile.capacity_by_track.items()},
        capacity_total="" if profile.capacity_total is None else str(profile.capacity_total),
        seek_backgrounds=prefs["seek"],
        share_backgrounds=prefs["identify_as"],
    )


def _render_profile(
    access: ProgramAccess, form: ProfileInput, errors: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    windows = list(form.windows) + [("", "", "")] * (WINDOW_ROWS - len(form.windows))
    closed = (
        ""
        if access.enrolled
        else enrollment.enrollment_closed_reason(access.program, today_for(access.participant))
    )
    return render_template(
        "programs/profile_form.html",
        access=access,
        program=access.program,
        form=form,
        windows=windows[:WINDOW_ROWS],
        errors=errors,
        vocabulary=program_vocabulary(access.program),
        track_options=[(t.value, t.label) for t in access.program.offered_tracks],
        background_options=[(b.code, b.label) for b in backgrounds()],
        career_stages=list(CareerStage),
        meeting_formats=list(MeetingFormat),
        days=DAYS,
        seats=open_seats_by_track(request_session(), access.participant)
        if access.participant
        else {},
        closed_reason=closed,
    ), status


@blueprint.get("/programs/<int:program_id>/profile")
@program_view()
def profile_form(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Enroll (first time) or edit one's profile."""
    if not (access.may_enroll_as_mentee or access.may_enroll_as_mentor or access.enrolled):
        abort(403)
    return _render_profile(access, _stored_input(access), {})


@blueprint.post("/programs/<int:program_id>/profile")
@program_view()
def save_profile(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Validate and store the enrollment form; bad input is shown at its field, nothing saved."""
    participant = access.participant
    may_mentee = access.may_enroll_as_mentee or (participant is not None and participant.is_mentee)
    may_mentor = access.may_enroll_as_mentor or (participant is not None and participant.is_mentor)
    if not (may_mentee or may_mentor):
        abort(403)
    session = request_session()
    form = _profile_input(request.form)
    try:
        data = validate_profile(
            session,
            form,
            program=access.program,
            participant=participant,
            may_mentee=may_mentee,
            may_mentor=may_mentor,
            peer_min_stage=access.peer_mentor_min_stage,
        )
        enrollment.save_enrollment(
            session,
            program=access.program,
            user=access.user,
            participant=participant,
            data=data,
            today=today_for(participant),
        )
    except FormInvalid as exc:
        session.rollback()
        return _render_profile(access, form, exc.errors, 400)
    session.commit()
    return back_home(program_id)


@blueprint.post("/programs/<int:program_id>/withdraw")
@program_view()
def withdraw(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Leave the program: relationships end (partners are told), circles are left."""
    if access.participant is None or not access.enrolled:
        abort(403)
    if request.form.get("confirm") != "yes":
        confirm = {"confirm": "Tick the box to confirm that you want to withdraw."}
        return _render_profile(access, _stored_input(access), confirm, 400)
    session = request_session()
    enrollment.withdraw(session, access.participant)
    session.commit()
    return back_home(program_id)


# --- notifications and privacy ------------------------------------------------------------


@blueprint.post("/programs/<int:program_id>/notifications/read")
@program_view()
def read_notifications(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Dismiss one's own notifications (ids of others' are ignored)."""
    if access.participant is None:
        abort(403)
    ids = [int(v) for v in request.form.getlist("id") if v.isdigit()]
    session = request_session()
    mark_read(session, access.participant, ids)
    session.commit()
    return back_home(program_id)


@blueprint.get("/programs/<int:program_id>/privacy")
@program_view()
def privacy(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Download my data; ask for deletion."""
    if access.participant is None:
        abort(403)
    return render_template(
        "programs/privacy.html", access=access, program=access.program, errors={}
    )


@blueprint.get("/courses/<int:course_id>/privacy")
@launch_required
def course_privacy(course_id: int) -> ResponseReturnValue:
    """The privacy pages of the person's programs in the course (a data-privacy launch)."""
    identity = current_identity()  # launch_required refused a token of another course
    programs = programs_holding_data(
        request_session(), course_id=course_id, user_id=identity.user_id
    )
    if len(programs) == 1:
        return redirect(
            url_for("participant.privacy", program_id=programs[0].id, lt=g.launch_token)
        )
    return render_template("programs/course_privacy.html", programs=programs)


@blueprint.get("/programs/<int:program_id>/my-data.json")
@program_view()
def my_data(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Everything the program holds about me, as a JSON download."""
    if access.participant is None:
        abort(403)
    data = enrollment.export_participant_data(request_session(), access.participant)
    data["exported_at"] = datetime.now(ZoneInfo("UTC")).isoformat()
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        mimetype="application/json",
        headers={
            "Content-Disposition": (
                f'attachment; filename="preceptor-program-{program_id}-my-data.json"'
            )
        },
    )


@blueprint.post("/programs/<int:program_id>/privacy/deletion")
@program_view()
def ask_for_deletion(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Record a deletion request for the coordinators and withdraw now."""
    if access.participant is None:
        abort(403)
    if request.form.get("confirm") != "yes":
        return render_template(
            "programs/privacy.html",
            access=access,
            program=access.program,
            errors={"confirm": "Tick the box to confirm that you want your data deleted."},
        ), 400
    session = request_session()
    enrollment.request_deletion(session, access.participant, actor_user_id=access.user.id)
    session.commit()
    return render_template(
        "programs/privacy.html",
        access=access,
        program=access.program,
        deletion_requested=True,
        errors={},
    )
