"""Mentoring pages: a mentee browses mentors with a free seat and asks one; the mentor
accepts or declines; partners see each other's shared profile (never private preferences).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request, url_for
from flask.typing import ResponseReturnValue

from plugin.db import request_session
from plugin.models import Participant, Relationship, RelationshipOrigin, RelationshipStatus, Track
from plugin.programs import dashboards
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.coordination import Actor
from plugin.programs.errors import (
    CapacityFull,
    FormInvalid,
    NotAllowed,
    ProgramError,
    StateConflict,
)
from plugin.programs.notifications import notify
from plugin.programs.profile_form import DAYS
from plugin.programs.relationships import propose_relationship, respond_to_request
from plugin.programs.rematch import (
    RematchCase,
    carryable_goals,
    rematch_case,
    rematch_mentors,
    request_rematch,
)
from plugin.programs.view_helpers import back_home, refuse, require_mentee, require_mentor
from plugin.programs.vocabulary import program_vocabulary

__all__ = ["blueprint"]

blueprint = Blueprint("mentoring", __name__)

REQUEST_NOTE_MAX = 1000


def _chosen_track(access: ProgramAccess, value: str | None) -> Track:
    offered = access.program.offered_tracks
    if not offered:
        abort(404)
    if value is None or value == "":
        wanted = (
            access.participant.profile.tracks_wanted
            if access.participant and access.participant.profile
            else []
        )
        return next((t for t in offered if t.value in wanted), offered[0])
    track = next((t for t in offered if t.value == value), None)
    if track is None:
        refuse(400, "This program does not offer that track; choose one from the list.")
    return track


def _render_browse(
    access: ProgramAccess, track: Track, errors: dict[str, str], status: int = 200, note: str = ""
) -> ResponseReturnValue:
    mentee = require_mentee(access)
    session = request_session()
    home = dashboards.mentee_home(session, access.program, mentee)
    return render_template(
        "programs/browse_mentors.html",
        access=access,
        program=access.program,
        track=track,
        cards=dashboards.browse_mentors(session, access.program, mentee, track),
        current=home.by_track.get(track),
        vocabulary=program_vocabulary(access.program),
        errors=errors,
        note=note,
    ), status


@blueprint.get("/programs/<int:program_id>/mentors")
@program_view()
def browse_mentors(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Mentors with a free seat on the chosen track, for a mentee to ask."""
    require_mentee(access)
    return _render_browse(access, _chosen_track(access, request.args.get("track")), {})


@blueprint.post("/programs/<int:program_id>/mentors/<int:mentor_id>/request")
@program_view()
def request_mentor(access: ProgramAccess, program_id: int, mentor_id: int) -> ResponseReturnValue:
    """A mentee asks a mentor on one track (a proposed relationship holding the seat)."""
    mentee = require_mentee(access)
    session = request_session()
    # The form always names its track: a missing or empty one is refused, not defaulted.
    track = _chosen_track(access, request.form.get("track") or "-")
    mentor = session.get(Participant, mentor_id)
    if mentor is None or mentor.program_id != program_id:
        abort(404)
    note = request.form.get("note", "").strip()
    field = f"note-{mentor_id}"
    if len(note) > REQUEST_NOTE_MAX:
        return _render_browse(
            access, track, {field: f"Use at most {REQUEST_NOTE_MAX} characters."}, 400, note
        )
    try:
        propose_relationship(
            session,
            program=access.program,
            mentee=mentee,
            mentor=mentor,
            track=track,
            origin=RelationshipOrigin.REQUEST,
            actor=mentee,
            note=note,
        )
    except (CapacityFull, StateConflict, NotAllowed) as exc:
        session.rollback()
        return _render_browse(
            access, track, {field: f"{str(exc)[:1].upper()}{str(exc)[1:]}."}, 409, note
        )
    notify(
        session,
        mentor,
        kind="relationship.requested",
        text=f"{mentee.display_name} asked you to be their {track.label} mentor.",
        link=f"/programs/{program_id}/",
    )
    session.commit()
    return back_home(program_id)


@blueprint.post("/programs/<int:program_id>/requests/<int:relationship_id>")
@program_view()
def answer_request(
    access: ProgramAccess, program_id: int, relationship_id: int
) -> ResponseReturnValue:
    """The requested mentor accepts or declines."""
    mentor = require_mentor(access)
    session = request_session()
    relationship = session.get(Relationship, relationship_id)
    if relationship is None or relationship.mentor_id != mentor.id:
        abort(404)
    decision = request.form.get("decision")
    if decision not in ("accept", "decline"):
        refuse(400, "Choose to accept or decline the request.")
    try:
        respond_to_request(session, relationship, accept=decision == "accept", actor=mentor)
    except StateConflict as exc:
        session.rollback()
        refuse(409, f"{exc}.")
    verb = "accepted" if decision == "accept" else "declined"
    notify(
        session,
        relationship.mentee,
        kind=f"relationship.{verb}",
        text=f"{mentor.display_name} {verb} your request for a {relationship.track.label} mentor.",
        link=f"/programs/{program_id}/",
    )
    session.commit()
    return back_home(program_id)


@blueprint.get("/programs/<int:program_id>/people/<int:participant_id>")
@program_view()
def shared_profile(
    access: ProgramAccess, program_id: int, participant_id: int
) -> ResponseReturnValue:
    """A partner's (or a mentor a mentee may ask) shared profile; never private preferences."""
    session = request_session()
    person = session.get(Participant, participant_id)
    if person is None or person.program_id != program_id or access.participant is None:
        abort(404)
    partners = dashboards.partner_ids(session, access.participant) if access.enrolled else {}
    askable = access.is_mentee and person.is_mentor and person.status.value == "active"
    if person.id != access.participant.id and person.id not in partners and not askable:
        abort(404)
    return render_template(
        "programs/shared_profile.html",
        access=access,
        program=access.program,
        person=person,
        profile=person.profile,
        active_partner=partners.get(person.id) == RelationshipStatus.ACTIVE,
        vocabulary=program_vocabulary(access.program),
        days=DAYS,
    )


# --- re-matching ----------------------------------------------------------------------------


def rematch_page(
    access: ProgramAccess,
    case: RematchCase,
    form: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
    *,
    template: str = "programs/rematch.html",
    action: str,
) -> ResponseReturnValue:
    """The "find a new mentor" page of ``case`` (mentee's or coordinator's template)."""
    session = request_session()
    goals = carryable_goals(session, case)
    return render_template(
        template,
        access=access,
        program=access.program,
        case=case,
        cards=rematch_mentors(session, access.program, case),
        goals=goals,
        goal_options=[(str(g.id), f"{g.title} ({g.status.value}, {g.progress}%)") for g in goals],
        vocabulary=program_vocabulary(access.program),
        form=form,
        errors=errors,
        action=action,
    ), status


def _my_case(access: ProgramAccess, relationship_id: int) -> RematchCase:
    mentee = require_mentee(access)
    case = rematch_case(request_session(), access.program, relationship_id, mentee_id=mentee.id)
    if case is None:
        abort(404)
    return case


def _rematch_form() -> dict[str, Any]:
    return {
        "mentor_id": request.form.get("mentor_id", ""),
        "goals": request.form.getlist("goals"),
        "note": request.form.get("note", ""),
    }


@blueprint.get("/programs/<int:program_id>/rematch/<int:relationship_id>")
@program_view()
def rematch_form(
    access: ProgramAccess, program_id: int, relationship_id: int
) -> ResponseReturnValue:
    """After a relationship closed as not working out: mentors to ask, goals to bring."""
    case = _my_case(access, relationship_id)
    form = {"mentor_id": "", "goals": [str(g.id) for g in carryable_goals(request_session(), case)]}
    action = url_for(
        "mentoring.rematch_submit", program_id=program_id, relationship_id=case.closed.id
    )
    return rematch_page(access, case, form, {}, action=action)


@blueprint.post("/programs/<int:program_id>/rematch/<int:relationship_id>")
@program_view()
def rematch_submit(
    access: ProgramAccess, program_id: int, relationship_id: int
) -> ResponseReturnValue:
    """The mentee asks the chosen mentor; the chosen goals come along once they accept."""
    case = _my_case(access, relationship_id)
    session = request_session()
    form = _rematch_form()
    action = url_for(
        "mentoring.rematch_submit", program_id=program_id, relationship_id=case.closed.id
    )
    try:
        request_rematch(
            session,
            access.program,
            case,
            Actor(user_id=access.user.id, participant=access.participant),
            mentor_id=form["mentor_id"],
            goal_ids=form["goals"],
            note=form["note"],
        )
    except FormInvalid as exc:
        session.rollback()
        return rematch_page(access, case, form, exc.errors, 400, action=action)
    except ProgramError as exc:
        session.rollback()
        case = _my_case(access, relationship_id)
        return rematch_page(access, case, form, {"mentor_id": _sentence(exc)}, 409, action=action)
    session.commit()
    return back_home(program_id)


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return (text[:1].upper() + text[1:]).rstrip(".") + "."
