"""Micro-mentoring pages: a mentor's weekly slots, and the page where mentees book them.

Times are shown in the viewer's own zone; a refused booking says why at the slot it was
for (400 for bad input, 409 when someone else was first or a limit applies).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import request_session
from plugin.meetings.errors import (
    BookingLimitReached,
    FormInvalid,
    NotAllowed,
    SlotTaken,
    StateConflict,
)
from plugin.meetings.slots import (
    book_slot,
    create_slot,
    deactivate_slot,
    open_occurrences,
    parse_slot_form,
)
from plugin.meetings.views import WEEKDAYS, actor_of, redirect_to, time_zones, zone_of
from plugin.models import Slot
from plugin.programs.access import ProgramAccess, program_view

__all__ = ["blueprint"]

blueprint = Blueprint("meeting_slots", __name__)


def _render_slots(
    session: Session, access: ProgramAccess, *, form: Any, errors: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    assert access.participant is not None
    slots = session.scalars(
        select(Slot)
        .where(Slot.mentor_id == access.participant.id, Slot.active.is_(True))
        .order_by(Slot.weekday, Slot.local_start)
    ).all()
    return render_template(
        "meetings/slots.html",
        program=access.program,
        slots=slots,
        weekdays=WEEKDAYS,
        zones=time_zones(),
        form=form,
        errors=errors,
        viewer_zone=zone_of(access),
    ), status


@blueprint.route("/programs/<int:program_id>/slots/", methods=["GET", "POST"])
@program_view()
def slots(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """A mentor's weekly micro-mentoring slots: list and publish."""
    if not access.is_mentor or access.participant is None:
        abort(404)
    session = request_session()
    zone_name = zone_of(access)
    defaults = {
        "time_zone": zone_name,
        "duration_minutes": "30",
        "cutoff_hours": "24",
        "per_mentee_limit": "1",
        "format": "virtual",
    }
    if request.method == "GET":
        return _render_slots(session, access, form=defaults, errors={})
    try:
        draft = parse_slot_form(request.form, default_zone=zone_name)
        create_slot(session, program=access.program, mentor=access.participant, draft=draft)
    except FormInvalid as exc:
        session.rollback()
        return _render_slots(session, access, form=request.form, errors=exc.errors, status=400)
    session.commit()
    return redirect_to("meeting_slots.slots", program_id=program_id)


@blueprint.post("/programs/<int:program_id>/slots/<int:slot_id>/remove")
@program_view()
def remove_slot(access: ProgramAccess, program_id: int, slot_id: int) -> ResponseReturnValue:
    session = request_session()
    slot = session.get(Slot, slot_id)
    if slot is None or slot.program_id != program_id:
        abort(404)
    try:
        deactivate_slot(session, slot, actor=actor_of(access))
    except NotAllowed:
        abort(404)
    session.commit()
    return redirect_to("meeting_slots.slots", program_id=program_id)


def _render_booking(
    session: Session,
    access: ProgramAccess,
    *,
    errors: dict[str, str],
    failed_slot: int | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    assert access.participant is not None
    by_slot: dict[int, tuple[Slot, list[datetime]]] = {}
    for occurrence in open_occurrences(session, access.program, mentee=access.participant):
        by_slot.setdefault(occurrence.slot.id, (occurrence.slot, []))[1].append(occurrence.start)
    return render_template(
        "meetings/book.html",
        program=access.program,
        offers=list(by_slot.values()),
        viewer_zone=zone_of(access),
        form=request.form,
        errors=errors,
        failed_slot=failed_slot,
    ), status


@blueprint.route("/programs/<int:program_id>/book", methods=["GET", "POST"])
@program_view()
def book(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Mentees book a mentor's micro-mentoring time on a topic (one form per slot)."""
    if not access.is_mentee or access.participant is None:
        abort(404)
    session = request_session()
    if request.method == "GET":
        return _render_booking(session, access, errors={})
    slot_id = request.form.get("slot_id", "")
    slot = session.get(Slot, int(slot_id)) if slot_id.isdigit() else None
    if slot is None or slot.program_id != program_id:
        abort(404)
    try:
        occurrence = datetime.fromisoformat(request.form.get("occurrence", ""))
    except ValueError:
        occurrence = None
    if occurrence is None or occurrence.tzinfo is None:
        errors = {"occurrence": "Choose one of the listed times."}
        return _render_booking(session, access, errors=errors, failed_slot=slot.id, status=400)
    try:
        booking = book_slot(
            session,
            slot=slot,
            mentee=access.participant,
            occurrence_start=occurrence,
            topic=request.form.get("topic", ""),
        )
    except FormInvalid as exc:
        session.rollback()
        errors = {("occurrence" if k == "start" else k): v for k, v in exc.errors.items()}
        return _render_booking(session, access, errors=errors, failed_slot=slot.id, status=400)
    except (SlotTaken, BookingLimitReached, StateConflict, NotAllowed) as exc:
        session.rollback()
        errors = {"occurrence": str(exc).capitalize() + "."}
        return _render_booking(session, access, errors=errors, failed_slot=slot.id, status=409)
    session.commit()
    return redirect_to("meetings.detail", program_id=program_id, meeting_id=booking.meeting_id)
