"""Meeting pages: schedule, detail (reschedule, cancel, record), my meetings with the
calendar panel, and the secret ICS feed (slot pages are in :mod:`plugin.meetings.slot_views`).

Times are shown in the viewer's own zone. Bad input answers 400 with a message at the
field and changes nothing; a meeting, relationship or slot the person may not see answers
404, like one of another program or course.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from plugin.db import request_session, utcnow
from plugin.meetings.availability import suggest_meeting_times
from plugin.meetings.errors import (
    FormInvalid,
    NotAllowed,
    StateConflict,
)
from plugin.meetings.feeds import build_feed, feed_for_token, live_feed, open_feed, revoke_feed
from plugin.meetings.freebusy import calendar_busy
from plugin.meetings.health import health_summary
from plugin.meetings.scheduling import (
    Actor,
    cancel_meeting,
    circle_people,
    mark_meeting,
    parse_meeting_form,
    reschedule_meeting,
    schedule_meeting,
    upcoming_meetings,
    viewer_zone,
    visible_meeting,
)
from plugin.meetings.sync import live_connection
from plugin.meetings.times import zone
from plugin.models import (
    CalendarConnection,
    Circle,
    CircleMember,
    Meeting,
    MeetingStatus,
    Participant,
    Relationship,
    RelationshipStatus,
)
from plugin.programs.access import ProgramAccess, program_view

__all__ = ["WEEKDAYS", "actor_of", "blueprint", "redirect_to", "time_zones", "zone_of"]

blueprint = Blueprint("meetings", __name__)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@blueprint.app_template_filter("localtime")
def _localtime(moment: datetime, zone_name: str, with_date: bool = True) -> str:
    """A UTC instant as the viewer reads it: "Tue 3 Mar 2026, 10:00"."""
    local = moment.astimezone(zone(zone_name))
    if not with_date:
        return f"{local:%H:%M}"
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"  # no %-d: not portable


def actor_of(access: ProgramAccess) -> Actor:
    """The acting person as the services see them."""
    return Actor(
        participant=access.participant if access.enrolled else None,
        is_coordinator=access.is_coordinator,
    )


def zone_of(access: ProgramAccess) -> str:
    """The viewer's own zone (times on every page are shown in it)."""
    return viewer_zone(access.participant, access.user)


def time_zones() -> list[str]:
    """IANA zones for the zone pickers (regions only, no Etc/ aliases)."""
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))


def redirect_to(endpoint: str, **values: Any) -> ResponseReturnValue:
    """See-other to a page, keeping the launch token."""
    return redirect(url_for(endpoint, lt=g.launch_token, **values), 303)


# --- scheduling ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Subject:
    """What a meeting is being scheduled for: a relationship or a circle, and its people."""

    people: list[Participant]
    heading: str
    action: str
    relationship: Relationship | None = None
    circle: Circle | None = None


def _may_schedule(access: ProgramAccess, people: list[Participant]) -> bool:
    mine = access.enrolled and access.participant is not None and access.participant in people
    return mine or access.is_coordinator


def _relationship_subject(
    session: Session, access: ProgramAccess, relationship_id: int
) -> _Subject:
    relationship = session.get(Relationship, relationship_id)
    if relationship is None or relationship.program_id != access.program.id:
        abort(404)
    people = [relationship.mentee, relationship.mentor]
    if not _may_schedule(access, people):
        abort(404)
    return _Subject(
        people=people,
        heading=f"{relationship.mentee.display_name} and {relationship.mentor.display_name}"
        f" · {relationship.track.label} track",
        action=url_for(
            "meetings.schedule", program_id=access.program.id, relationship_id=relationship.id
        ),
        relationship=relationship,
    )


def _circle_subject(session: Session, access: ProgramAccess, circle_id: int) -> _Subject:
    circle = session.get(Circle, circle_id)
    if circle is None or circle.program_id != access.program.id:
        abort(404)
    people = circle_people(circle)
    if not _may_schedule(access, people):
        abort(404)
    return _Subject(
        people=people,
        heading=f"Peer circle {circle.name}: " + ", ".join(p.display_name for p in people),
        action=url_for(
            "meetings.schedule_circle", program_id=access.program.id, circle_id=circle.id
        ),
        circle=circle,
    )


def _render_schedule(
    session: Session,
    access: ProgramAccess,
    subject: _Subject,
    *,
    form: Any,
    errors: dict[str, str],
    status: int = 200,
) -> ResponseReturnValue:
    since = utcnow() + timedelta(hours=12)
    busy = calendar_busy(session, subject.people, since=since, until=since + timedelta(weeks=2))
    suggestions = suggest_meeting_times(
        session, subject.people, since=since, weeks=2, extra_busy=busy.intervals
    )
    try:
        session.commit()  # tokens a provider refreshed while answering free/busy
    except SQLAlchemyError:
        session.rollback()  # not stored: refreshed again next time, nothing lost
    return render_template(
        "meetings/schedule.html",
        program=access.program,
        subject=subject,
        suggestions=suggestions,
        calendars_checked=bool(busy.checked),
        calendars_unavailable=[p.display_name for p in busy.unavailable],
        viewer_zone=zone_of(access),
        zones=time_zones(),
        form=form,
        errors=errors,
    ), status


def _schedule_for(
    session: Session, access: ProgramAccess, subject: _Subject
) -> ResponseReturnValue:
    if request.method == "GET":
        return _render_schedule(session, access, subject, form={"format": "virtual"}, errors={})
    try:
        draft = parse_meeting_form(request.form, default_zone=zone_of(access))
        meeting = schedule_meeting(
            session,
            program=access.program,
            actor=actor_of(access),
            draft=draft,
            relationship=subject.relationship,
            circle=subject.circle,
        )
    except FormInvalid as exc:
        session.rollback()
        return _render_schedule(
            session, access, subject, form=request.form, errors=exc.errors, status=400
        )
    except (StateConflict, NotAllowed) as exc:
        session.rollback()
        errors = {"form": str(exc).capitalize() + "."}
        return _render_schedule(
            session, access, subject, form=request.form, errors=errors, status=409
        )
    session.commit()
    return redirect_to("meetings.detail", program_id=access.program.id, meeting_id=meeting.id)


@blueprint.route(
    "/programs/<int:program_id>/relationships/<int:relationship_id>/meetings/new",
    methods=["GET", "POST"],
)
@program_view()
def schedule(access: ProgramAccess, program_id: int, relationship_id: int) -> ResponseReturnValue:
    """Schedule a meeting of a relationship: a suggested time or one of the person's own."""
    session = request_session()
    return _schedule_for(session, access, _relationship_subject(session, access, relationship_id))


@blueprint.route(
    "/programs/<int:program_id>/circles/<int:circle_id>/meetings/new", methods=["GET", "POST"]
)
@program_view()
def schedule_circle(access: ProgramAccess, program_id: int, circle_id: int) -> ResponseReturnValue:
    """Schedule a peer circle's meeting (its members, facilitator, or a coordinator)."""
    session = request_session()
    return _schedule_for(session, access, _circle_subject(session, access, circle_id))


def _meeting_for(session: Session, access: ProgramAccess, meeting_id: int) -> Meeting:
    meeting = visible_meeting(session, access.program, meeting_id, actor_of(access))
    if meeting is None:
        abort(404)
    return meeting


def _render_detail(
    access: ProgramAccess,
    meeting: Meeting,
    *,
    form: Any = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    viewer = zone_of(access)
    local_start = meeting.starts_at.astimezone(zone(viewer))
    defaults = {
        "suggestion": "custom",
        "date": local_start.date().isoformat(),
        "start": local_start.strftime("%H:%M"),
        "end": meeting.ends_at.astimezone(zone(viewer)).strftime("%H:%M"),
        "time_zone": viewer,
        "format": meeting.format.value,
        "conference_url": meeting.conference_url if meeting.conference_source == "pasted" else "",
        "location": meeting.location,
        "agenda": meeting.agenda,
    }
    return render_template(
        "meetings/detail.html",
        program=access.program,
        meeting=meeting,
        viewer_zone=viewer,
        zones=time_zones(),
        form=form if form is not None else defaults,
        errors=errors or {},
        started=meeting.starts_at <= utcnow(),
    ), status


@blueprint.get("/programs/<int:program_id>/meetings/<int:meeting_id>")
@program_view()
def detail(access: ProgramAccess, program_id: int, meeting_id: int) -> ResponseReturnValue:
    """One meeting, with reschedule, cancel and held/missed."""
    return _render_detail(access, _meeting_for(request_session(), access, meeting_id))


@blueprint.post(
    "/programs/<int:program_id>/meetings/<int:meeting_id>/<any(reschedule, cancel, record):action>"
)
@program_view()
def change(
    access: ProgramAccess, program_id: int, meeting_id: int, action: str
) -> ResponseReturnValue:
    """Reschedule, cancel (with a reason) or record a meeting as held or missed."""
    session = request_session()
    meeting = _meeting_for(session, access, meeting_id)
    actor = actor_of(access)
    try:
        if action == "reschedule":
            draft = parse_meeting_form(request.form, default_zone=zone_of(access))
            reschedule_meeting(session, meeting, actor=actor, draft=draft)
        elif action == "cancel":
            cancel_meeting(session, meeting, actor=actor, reason=request.form.get("reason", ""))
        else:
            wanted = request.form.get("status", "")
            if wanted not in (MeetingStatus.HELD.value, MeetingStatus.MISSED.value):
                # Buttons, not a field: the message goes on top of the page.
                raise FormInvalid({"form": "Choose held or missed."})
            mark_meeting(session, meeting, actor=actor, status=MeetingStatus(wanted))
    except FormInvalid as exc:
        session.rollback()
        session.refresh(meeting)
        return _render_detail(access, meeting, form=request.form, errors=exc.errors, status=400)
    except (StateConflict, NotAllowed) as exc:
        session.rollback()
        session.refresh(meeting)
        errors = {"form": str(exc).capitalize() + "."}
        return _render_detail(access, meeting, errors=errors, status=409)
    session.commit()
    return redirect_to("meetings.detail", program_id=program_id, meeting_id=meeting.id)


# --- my meetings and the calendar panel ---------------------------------------------------


def _connection_of(session: Session, participant: Participant) -> CalendarConnection | None:
    live = live_connection(session, participant)
    if live is not None:
        return live
    # The latest revoked one, so the person sees why their calendar stopped.
    return session.scalar(
        select(CalendarConnection)
        .where(CalendarConnection.participant_id == participant.id)
        .order_by(CalendarConnection.id.desc())
        .limit(1)
    )


@blueprint.get("/programs/<int:program_id>/meetings/")
@program_view()
def my_meetings(access: ProgramAccess, program_id: int) -> ResponseReturnValue:
    """Upcoming meetings in the viewer's zone, their relationships, and the calendar panel."""
    session = request_session()
    participant = access.participant if access.enrolled else None
    meetings: list[Meeting] = []
    relationships: list[Relationship] = []
    circles: list[Circle] = []
    connection = feed = None
    if participant is not None:
        meetings = upcoming_meetings(session, participant)
        relationships = list(
            session.scalars(
                select(Relationship).where(
                    Relationship.program_id == program_id,
                    (Relationship.mentee_id == participant.id)
                    | (Relationship.mentor_id == participant.id),
                    Relationship.status == RelationshipStatus.ACTIVE,
                )
            )
        )
        circles = list(
            session.scalars(
                select(Circle)
                .outerjoin(CircleMember, CircleMember.circle_id == Circle.id)
                .where(
                    Circle.program_id == program_id,
                    Circle.closed_at.is_(None),
                    (
                        (CircleMember.participant_id == participant.id)
                        & CircleMember.left_at.is_(None)
                    )
                    | (Circle.facilitator_id == participant.id),
                )
                .distinct()
            )
        )
        connection = _connection_of(session, participant)
        feed = live_feed(session, participant)
    feed_url = (
        url_for("meetings.ics_feed", token=feed.token, _external=True) if feed is not None else ""
    )
    return render_template(
        "meetings/list.html",
        program=access.program,
        access=access,
        participant=participant,
        meetings=meetings,
        relationships=relationships,
        circles=circles,
        connection=connection,
        calendar_health=health_summary(connection) if connection is not None else None,
        feed_url=feed_url,
        viewer_zone=zone_of(access),
    )


@blueprint.post("/programs/<int:program_id>/calendar/feed/<any(open, revoke):action>")
@program_view()
def calendar_feed(access: ProgramAccess, program_id: int, action: str) -> ResponseReturnValue:
    """Create (or show again) the person's secret feed URL, or revoke it."""
    if not access.enrolled or access.participant is None:
        abort(404)
    session = request_session()
    if action == "open":
        open_feed(session, access.participant)
    else:
        revoke_feed(session, access.participant)
    session.commit()
    return redirect_to("meetings.my_meetings", program_id=program_id)


@blueprint.get("/feeds/<token>.ics")
def ics_feed(token: str) -> ResponseReturnValue:
    """A participant's meetings as iCalendar; the token is the only credential."""
    session = request_session()
    feed = feed_for_token(session, token)
    if feed is None:
        abort(404)
    body = build_feed(session, feed.participant)
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Content-Disposition": 'inline; filename="mentoring.ics"'},
    )
