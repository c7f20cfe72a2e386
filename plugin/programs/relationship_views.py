"""Coordinator routes for pairing and relationships (registered on the coordinator blueprint).

Pairing goes through :func:`plugin.programs.coordination.pair` and so through the
seat-safe relationship services; every id in a URL is looked up inside the program.
"""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from plugin.db import request_session
from plugin.models import (
    AuditEvent,
    Participant,
    ParticipantStatus,
    RelationshipEvent,
    RelationshipStatus,
    Track,
    User,
)
from plugin.programs.access import ProgramAccess, program_view
from plugin.programs.coordination import (
    change_relationship,
    close_relationships,
    pair,
    participant_in_program,
    relationship_in_program,
)
from plugin.programs.coordinator_views import actor_of, back, blueprint, page_arg
from plugin.programs.errors import FormInvalid, ProgramError
from plugin.programs.mentoring_views import rematch_page
from plugin.programs.rematch import RematchCase, carryable_goals, rematch_case, request_rematch
from plugin.programs.workspace import free_seats, relationships_page

__all__: list[str] = []


# --- pairing ------------------------------------------------------------------------------


def _pair_page(
    access: ProgramAccess,
    mentee: Participant,
    form: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> ResponseReturnValue:
    session = request_session()
    program = access.program
    mentors = list(
        session.scalars(
            select(Participant)
            .where(
                Participant.program_id == program.id,
                Participant.is_mentor.is_(True),
                Participant.status == ParticipantStatus.ACTIVE,
                Participant.id != mentee.id,
            )
            .options(joinedload(Participant.user), joinedload(Participant.profile))
        ).unique()
    )
    mentors.sort(key=lambda p: p.display_name.lower())
    track = form.get("track") or next(
        (
            t
            for t in (mentee.profile.tracks_wanted if mentee.profile else [])
            if t in program.tracks
        ),
        program.tracks[0] if program.tracks else "",
    )
    seats = (
        free_seats(session, program, mentors, Track(track))
        if track in Track._value2member_map_
        else {}
    )
    return render_template(
        "coordinator/pair.html",
        access=access,
        program=program,
        mentee=mentee,
        mentors=mentors,
        seats=seats,
        track=track,
        form=form,
        errors=errors,
    ), status


@blueprint.get("/people/<int:participant_id>/pair")
@program_view(coordinator=True)
def pair_form(access: ProgramAccess, program_id: int, participant_id: int) -> ResponseReturnValue:
    """Choose a mentor and a track for this mentee."""
    mentee = participant_in_program(request_session(), access.program, participant_id)
    if mentee is None:
        abort(404)
    return _pair_page(access, mentee, {"track": request.args.get("track", "")}, {})


@blueprint.post("/people/<int:participant_id>/pair")
@program_view(coordinator=True)
def pair_submit(access: ProgramAccess, program_id: int, participant_id: int) -> ResponseReturnValue:
    """Pair the mentee with the chosen mentor, active at once."""
    session = request_session()
    mentee = participant_in_program(session, access.program, participant_id)
    if mentee is None:
        abort(404)
    form = {k: request.form.get(k, "") for k in ("mentor_id", "track", "note")}
    mentor_raw = form["mentor_id"]
    try:
        pair(
            session,
            access.program,
            actor_of(access),
            mentee_id=mentee.id,
            mentor_id=int(mentor_raw) if mentor_raw.isdigit() else None,
            track=form["track"],
            note=form["note"],
        )
    except FormInvalid as exc:
        session.rollback()
        return _pair_page(access, mentee, form, exc.errors, 400)
    except ProgramError as exc:
        session.rollback()
        mentee = participant_in_program(session, access.program, participant_id)
        assert mentee is not None
        return _pair_page(access, mentee, form, {"mentor_id": _sentence(exc)}, 409)
    session.commit()
    return back("coordinator.relationships", "paired", program_id=program_id)


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


# --- relationships ------------------------------------------------------------------------


@blueprint.get("/relationships")
@program_view(coordinator=True)
def relationships(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """The program's relationships by status and track."""
    status = request.args.get("status", "")
    track = request.args.get("track", "")
    result = relationships_page(
        request_session(), access.program, status=status, track=track, page=page_arg()
    )
    return render_template(
        "coordinator/relationships.html",
        access=access,
        program=access.program,
        result=result,
        status=status if status in RelationshipStatus._value2member_map_ else "",
        track=track if track in Track._value2member_map_ else "",
        statuses=list(RelationshipStatus),
        errors={},
    )


@blueprint.post("/relationships/bulk")
@program_view(coordinator=True)
def relationships_bulk(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Close the selected relationships with a reason."""
    session = request_session()
    try:
        n = close_relationships(
            session,
            access.program,
            actor_of(access),
            request.form.getlist("selected"),
            reason=request.form.get("reason", ""),
            note=request.form.get("note", ""),
        )
    except FormInvalid as exc:
        session.rollback()
        return render_template(
            "coordinator/relationships.html",
            access=access,
            program=access.program,
            result=relationships_page(session, access.program),
            status="",
            track="",
            statuses=list(RelationshipStatus),
            errors=exc.errors,
        ), 400
    session.commit()
    return back("coordinator.relationships", "closed", n, program_id=program_id)


def _history_page(
    access: ProgramAccess, relationship_id: int, errors: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    session = request_session()
    rel = relationship_in_program(session, access.program, relationship_id)
    if rel is None:
        abort(404)
    events = session.execute(
        select(RelationshipEvent, Participant)
        .outerjoin(Participant, Participant.id == RelationshipEvent.actor_id)
        .where(RelationshipEvent.relationship_id == rel.id)
        .order_by(RelationshipEvent.id)
    ).all()
    audits = session.execute(
        select(AuditEvent, User)
        .outerjoin(User, User.id == AuditEvent.actor_user_id)
        .where(
            AuditEvent.program_id == access.program.id,
            AuditEvent.target_type == "relationship",
            AuditEvent.target_id == rel.id,
        )
        .order_by(AuditEvent.id)
    ).all()
    return render_template(
        "coordinator/relationship.html",
        access=access,
        program=access.program,
        rel=rel,
        events=events,
        audits=audits,
        errors=errors,
    ), status


@blueprint.get("/relationships/<int:relationship_id>")
@program_view(coordinator=True)
def relationship_history(
    access: ProgramAccess, program_id: int, relationship_id: int
) -> ResponseReturnValue:
    """One relationship: its people, status and every step of its history."""
    return _history_page(access, relationship_id, {})


@blueprint.post("/relationships/<int:relationship_id>/status")
@program_view(coordinator=True)
def relationship_status(
    access: ProgramAccess, program_id: int, relationship_id: int
) -> ResponseReturnValue:
    """Pause, resume or close one relationship."""
    session = request_session()
    rel = relationship_in_program(session, access.program, relationship_id)
    if rel is None:
        abort(404)
    try:
        change_relationship(
            session,
            access.program,
            actor_of(access),
            rel,
            action=request.form.get("action", ""),
            reason=request.form.get("reason", ""),
            note=request.form.get("note", ""),
        )
    except FormInvalid as exc:
        session.rollback()
        return _history_page(access, relationship_id, exc.errors, 400)
    except ProgramError as exc:
        session.rollback()
        return _history_page(access, relationship_id, {"action": _sentence(exc)}, 409)
    session.commit()
    return back(
        "coordinator.relationship_history",
        "updated",
        program_id=program_id,
        relationship_id=relationship_id,
    )


# --- re-matching --------------------------------------------------------------------------


def _rematch_case_or_404(access: ProgramAccess, relationship_id: int) -> RematchCase:
    case = rematch_case(request_session(), access.program, relationship_id)
    if case is None:
        abort(404)
    return case


@blueprint.get("/rematch/<int:relationship_id>")
@program_view(coordinator=True)
def rematch_form(
    access: ProgramAccess, program_id: int, relationship_id: int
) -> ResponseReturnValue:
    """Find a new mentor for a mentee whose relationship closed as not working out."""
    case = _rematch_case_or_404(access, relationship_id)
    form = {"mentor_id": "", "goals": [str(g.id) for g in carryable_goals(request_session(), case)]}
    return rematch_page(
        access,
        case,
        form,
        {},
        template="coordinator/rematch.html",
        action=_rematch_action(program_id, relationship_id),
    )


def _rematch_action(program_id: int, relationship_id: int) -> str:
    return url_for(
        "coordinator.rematch_submit", program_id=program_id, relationship_id=relationship_id
    )


@blueprint.post("/rematch/<int:relationship_id>")
@program_view(coordinator=True)
def rematch_submit(
    access: ProgramAccess, program_id: int, relationship_id: int
) -> ResponseReturnValue:
    """Pair the mentee with the chosen mentor at once; the chosen goals come along."""
    session = request_session()
    case = _rematch_case_or_404(access, relationship_id)
    form: dict[str, Any] = {
        "mentor_id": request.form.get("mentor_id", ""),
        "goals": request.form.getlist("goals"),
        "note": request.form.get("note", ""),
    }
    page = {
        "template": "coordinator/rematch.html",
        "action": _rematch_action(program_id, relationship_id),
    }
    try:
        request_rematch(
            session,
            access.program,
            case,
            actor_of(access),
            mentor_id=form["mentor_id"],
            goal_ids=form["goals"],
            note=form["note"],
            by_coordinator=True,
        )
    except FormInvalid as exc:
        session.rollback()
        return rematch_page(access, case, form, exc.errors, 400, **page)
    except ProgramError as exc:
        session.rollback()
        case = _rematch_case_or_404(access, relationship_id)
        return rematch_page(access, case, form, {"mentor_id": _sentence(exc)}, 409, **page)
    session.commit()
    return back("coordinator.workspace", "rematched", program_id=program_id)
