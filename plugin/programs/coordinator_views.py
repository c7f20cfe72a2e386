"""Coordinator pages of a program: the blueprint, settings, audit log and people list.

Every route here is a ``program_view(coordinator=True)``: a token for another course
answers 404, a person who does not coordinate this program 403; objects named in the URL
or the form are looked up inside the program, so a foreign id answers 404 too.
"""

from __future__ import annotations

from typing import Any, Final

from flask import (
    Blueprint,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from plugin.db import request_session
from plugin.models import (
    AuditEvent,
    CareerStage,
    MentorPolicy,
    User,
)
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.coordination import (
    COORDINATOR_CLOSE_REASONS,
    Actor,
    make_coordinators,
    withdraw_participants,
)
from plugin.programs.errors import FormInvalid
from plugin.programs.rematch import waiting_rematches
from plugin.programs.settings import (
    TRACK_DEFAULT_FIELD,
    followup_settings,
    participation_rule,
    update_program_settings,
)
from plugin.programs.workspace import (
    PAGE_SIZE,
    EnrollmentStatus,
    PeopleFilter,
    people_page,
)

__all__ = ["blueprint"]

blueprint = Blueprint("coordinator", __name__, url_prefix="/programs/<int:program_id>/coordinator")


def actor_of(access: ProgramAccess) -> Actor:
    return Actor(
        user_id=access.user.id, participant=access.participant if access.enrolled else None
    )


#: Confirmations shown after a redirect. Carried in the URL as a code (pages live in an
#: LMS iframe where cookies, and so flashed messages, are unreliable).
NOTICES = {
    "saved": "Settings saved.",
    "unchanged": "Nothing changed.",
    "coordinators": "{n} person(s) made coordinator.",
    "withdrawn": "{n} person(s) withdrawn; their open relationships were closed.",
    "paired": "The mentee is paired; the relationship is active.",
    "closed": "{n} relationship(s) closed.",
    "updated": "Relationship updated.",
    "rematched": "The mentee is re-matched; the chosen goals moved to the new relationship.",
    "circle_created": "Circle created. Add its mentees below.",
    "members_added": "Mentees added to the circle.",
    "member_removed": "The mentee left the circle.",
    "circle_closed": "Circle closed.",
    "round_started": "Match round started.",
    "round_rerun": "The round is running again; locked pairs are kept.",
    "round_published": "Round published: {n} relationship(s) created.",
    "proposal_locked": "Pair locked: re-runs keep it.",
    "proposal_rejected": "Pair rejected: it will not be proposed again in this round.",
    "proposal_excluded": "These two will not be paired again, in this round or later ones.",
    "proposal_proposed": "Pair back to proposed.",
    "erased": "The participant's personal data in this program is erased.",
    "already_erased": "That participant was already erased.",
}


def back(endpoint: str, notice: str, n: int | None = None, **values: Any) -> ResponseReturnValue:
    """Redirect (303) to a coordinator page with a confirmation, keeping the launch token."""
    if n is not None:
        values["n"] = n
    return redirect(url_for(endpoint, lt=g.launch_token, notice=notice, **values), 303)


#: Built once: listing an enum is ~4 us and this runs for every page (every launch too).
_MENTOR_POLICIES: Final = list(MentorPolicy)
_CAREER_STAGES: Final = list(CareerStage)


@blueprint.app_context_processor
def _coordinator_helpers() -> dict[str, Any]:
    notice = ""
    if has_request_context() and (key := request.args.get("notice")):
        notice = NOTICES.get(key, "")
        n = request.args.get("n", "0")
        notice = notice.format(n=int(n) if n.isdigit() else 0)
    return {
        "close_reasons": COORDINATOR_CLOSE_REASONS,
        "mentor_policies": _MENTOR_POLICIES,
        "career_stages": _CAREER_STAGES,
        "notice": notice,
    }


# --- settings and audit -------------------------------------------------------------------


def _settings_form(access: ProgramAccess) -> dict[str, Any]:
    program = access.program
    followups = followup_settings(program)
    rule = participation_rule(program)
    quiet = followups.get("quiet_hours") or {}
    track_defaults = {
        f"{TRACK_DEFAULT_FIELD}{track}": str(number)
        for track, number in (program.default_capacity_by_track or {}).items()
    }
    return {
        "title": program.title,
        "description": program.description,
        "tracks": list(program.tracks),
        "mentor_policy": program.mentor_policy.value,
        "peer_mentor_min_stage": program.peer_mentor_min_stage.value,
        "default_mentor_capacity": str(program.default_mentor_capacity),
        "enrollment_opens_on": program.enrollment_opens_on or "",
        "enrollment_closes_on": program.enrollment_closes_on or "",
        "meeting_cadence_days": str(program.meeting_cadence_days),
        "reminder_offsets_hours": ", ".join(str(h) for h in followups["reminder_offsets_hours"]),
        "nudge_after_days": str(followups["nudge_after_days"]),
        "nudge_cap": str(followups["nudge_cap"]),
        "quiet_start": quiet.get("start", ""),
        "quiet_end": quiet.get("end", ""),
        "points_per_meeting": str(rule["points_per_meeting"]),
        "points_per_checkin": str(rule["points_per_checkin"]),
        "points_maximum": str(rule["maximum"]),
        "extra_interests": "\n".join(i["label"] for i in program.extra_interests or []),
        **track_defaults,
    }


@blueprint.route("/settings", methods=["GET", "POST"])
@program_view(coordinator=True)
def settings(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """The program's settings; a change is applied whole or not at all, and audited."""
    session = request_session()
    if request.method == "POST":
        form: dict[str, Any] = {k: request.form.get(k, "") for k in request.form if k != "lt"}
        form["tracks"] = request.form.getlist("tracks")
        try:
            changed = update_program_settings(
                session, access.program, form, actor_user_id=access.user.id
            )
        except FormInvalid as exc:
            session.rollback()
            return render_template(
                "coordinator/settings.html",
                access=access,
                program=access.program,
                form=form,
                errors=exc.errors,
            ), 400
        session.commit()
        return back(
            "coordinator.settings", "saved" if changed else "unchanged", program_id=program_id
        )
    return render_template(
        "coordinator/settings.html",
        access=access,
        program=access.program,
        form=_settings_form(access),
        errors={},
    )


@blueprint.get("/audit")
@program_view(coordinator=True)
def audit_log(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Who changed what in this program, newest first."""
    page = page_arg()
    session = request_session()
    rows = session.execute(
        select(AuditEvent, User)
        .outerjoin(User, User.id == AuditEvent.actor_user_id)
        .where(AuditEvent.program_id == access.program.id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(PAGE_SIZE + 1)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return render_template(
        "coordinator/audit.html",
        access=access,
        program=access.program,
        events=rows[:PAGE_SIZE],
        page=page,
        has_next=len(rows) > PAGE_SIZE,
    )


def page_arg() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


# --- workspace ----------------------------------------------------------------------------


@blueprint.get("/")
@program_view(coordinator=True)
def workspace(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Everyone in the program and in the course, with filters, search and paging."""
    wanted = PeopleFilter.from_args(request.args)
    result = people_page(request_session(), access.program, wanted)
    return render_template(
        "coordinator/workspace.html",
        access=access,
        program=access.program,
        result=result,
        wanted=wanted,
        statuses=list(EnrollmentStatus),
        rematches=waiting_rematches(request_session(), access.program),
        errors={},
    )


@blueprint.post("/people/bulk")
@program_view(coordinator=True)
def people_bulk(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Bulk actions on selected people: make coordinator, withdraw."""
    session = request_session()
    action = request.form.get("action", "")
    selected = request.form.getlist("selected")
    participant_ids = [s.removeprefix("p") for s in selected if s.startswith("p")]
    user_ids = [s.removeprefix("u") for s in selected if s.startswith("u")]
    try:
        if len(participant_ids) + len(user_ids) != len(selected):
            raise FormInvalid({"selected": "The selection could not be read; reload the page."})
        if action == "make_coordinator":
            n = make_coordinators(
                session,
                access.program,
                actor_of(access),
                participant_ids=participant_ids,
                user_ids=user_ids,
            )
            notice = "coordinators"
        elif action == "withdraw":
            if user_ids:
                raise FormInvalid({"selected": "Only enrolled people can be withdrawn."})
            n = withdraw_participants(session, access.program, actor_of(access), participant_ids)
            notice = "withdrawn"
        else:
            raise FormInvalid({"action": "Choose an action for the selected people."})
    except FormInvalid as exc:
        session.rollback()
        wanted = PeopleFilter.from_args(request.args)
        return render_template(
            "coordinator/workspace.html",
            access=access,
            program=access.program,
            result=people_page(session, access.program, wanted),
            wanted=wanted,
            statuses=list(EnrollmentStatus),
            rematches=waiting_rematches(session, access.program),
            errors=exc.errors,
        ), 400
    session.commit()
    return back("coordinator.workspace", notice, n, program_id=program_id)


# Routes defined in their own modules, registered on this blueprint when it is imported.
from plugin.programs import (  # noqa: E402,F401
    circle_views,
    goal_summary_views,
    privacy_views,
    relationship_views,
    round_views,
    transfer_views,
)
