"""Schedule, reschedule, cancel and record meetings of relationships and circles.

Who may: the relationship's mentee and mentor (or the circle's members and facilitator)
and the program's coordinators. Every change bumps ``Meeting.version`` and, in the same
transaction, writes the attendees' sync intents (:func:`plugin.meetings.sync.write_sync_intents`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.grades import queue_participation_score
from plugin.meetings.errors import FormInvalid, NotAllowed, StateConflict
from plugin.meetings.history import meetings_changed
from plugin.meetings.sync import write_roster_intents, write_sync_intents
from plugin.meetings.times import is_valid_zone, local_to_utc, parse_hhmm
from plugin.models import (
    BookingState,
    Circle,
    CircleMember,
    Meeting,
    MeetingAttendee,
    MeetingFormat,
    MeetingKind,
    MeetingStatus,
    Participant,
    ParticipantStatus,
    Program,
    Relationship,
    RelationshipStatus,
    Slot,
    SlotBooking,
    SyncOperation,
    User,
)

__all__ = [
    "Actor",
    "MeetingDraft",
    "cancel_meeting",
    "cancel_meetings_of_circle",
    "cancel_meetings_of_departed",
    "cancel_meetings_of_relationship",
    "check_free",
    "circle_people",
    "lock_meeting",
    "mark_meeting",
    "may_manage",
    "parse_meeting_form",
    "reschedule_meeting",
    "schedule_meeting",
    "sync_circle_attendees",
    "upcoming_meetings",
    "viewer_zone",
    "visible_meeting",
]

#: Longest meeting the form accepts.
MAX_DURATION = timedelta(hours=8)
AGENDA_MAX = 4000
REASON_MAX = 1000


@dataclass(frozen=True)
class Actor:
    """Who is acting: their enrollment (None for a coordinator who is not enrolled)."""

    participant: Participant | None
    is_coordinator: bool

    @property
    def participant_id(self) -> int | None:
        return self.participant.id if self.participant is not None else None


@dataclass(frozen=True)
class MeetingDraft:
    """A validated meeting form: when, where and what."""

    starts_at: datetime
    ends_at: datetime
    time_zone: str
    format: MeetingFormat
    conference_url: str = ""
    location: str = ""
    agenda: str = ""


def viewer_zone(participant: Participant | None, user: User | None = None) -> str:
    """The zone to show a person times in: their profile's, else their user's, else UTC."""
    profile = participant.profile if participant is not None else None
    profile_zone = profile.time_zone if profile is not None else ""
    if profile_zone and profile_zone != "UTC" and is_valid_zone(profile_zone):
        return profile_zone
    if user is not None and is_valid_zone(user.time_zone):
        return user.time_zone
    return "UTC"


def _parse_interval(value: str) -> tuple[datetime, datetime] | None:
    try:
        start_s, end_s = value.split("/", 1)
        start, end = datetime.fromisoformat(start_s), datetime.fromisoformat(end_s)
    except ValueError:
        return None
    if start.tzinfo is None or end.tzinfo is None:
        return None
    return start.astimezone(UTC), end.astimezone(UTC)


def parse_meeting_form(
    data: Mapping[str, str], *, default_zone: str, now: datetime | None = None
) -> MeetingDraft:
    """A draft from form fields, or FormInvalid with a message per field.

    Time: ``suggestion`` (``"<start>/<end>"`` in ISO 8601 with offsets) picks a suggested
    time; ``suggestion=custom`` or none reads ``date`` (YYYY-MM-DD), ``start`` and ``end``
    (HH:MM) in ``time_zone``. Place: ``format`` virtual (``conference_url``, https, optional)
    or in_person (``location``, required). ``agenda`` is free text.
    """
    now = now or utcnow()
    errors: dict[str, str] = {}
    zone_name = (data.get("time_zone") or default_zone).strip()
    if not is_valid_zone(zone_name):
        errors["time_zone"] = "Choose a time zone from the list, e.g. Europe/London."
    starts_at = ends_at = None
    choice = (data.get("suggestion") or "custom").strip()
    if choice != "custom":
        interval = _parse_interval(choice)
        if interval is None:
            errors["suggestion"] = "Choose one of the suggested times or enter a time."
        else:
            starts_at, ends_at = interval
    elif "time_zone" not in errors:
        starts_at, ends_at = _custom_time(data, zone_name, errors)
    if starts_at is not None and ends_at is not None:
        field = "end" if choice == "custom" else "suggestion"
        if ends_at <= starts_at:
            errors[field] = "End the meeting after it starts."
        elif ends_at - starts_at > MAX_DURATION:
            errors[field] = "Keep a meeting under 8 hours."
        if starts_at <= now:
            errors["start" if choice == "custom" else "suggestion"] = "Choose a time in the future."
    meeting_format, url, location = _place(data, errors)
    agenda = (data.get("agenda") or "").strip()
    if len(agenda) > AGENDA_MAX:
        errors["agenda"] = f"Keep the agenda under {AGENDA_MAX} characters."
    if errors or starts_at is None or ends_at is None or meeting_format is None:
        raise FormInvalid(errors or {"start": "Enter a time."})
    return MeetingDraft(
        starts_at=starts_at,
        ends_at=ends_at,
        time_zone=zone_name,
        format=meeting_format,
        conference_url=url,
        location=location,
        agenda=agenda,
    )


def _custom_time(
    data: Mapping[str, str], zone_name: str, errors: dict[str, str]
) -> tuple[datetime | None, datetime | None]:
    try:
        day = date.fromisoformat((data.get("date") or "").strip())
    except ValueError:
        errors["date"] = "Enter a date as YYYY-MM-DD."
        return None, None
    start_t = parse_hhmm(data.get("start") or "")
    end_t = parse_hhmm(data.get("end") or "")
    if start_t is None:
        errors["start"] = "Enter a start time as HH:MM (24-hour)."
    if end_t is None:
        errors["end"] = "Enter an end time as HH:MM (24-hour)."
    if start_t is None or end_t is None:
        return None, None
    return local_to_utc(day, start_t, zone_name), local_to_utc(day, end_t, zone_name)


def _place(
    data: Mapping[str, str], errors: dict[str, str]
) -> tuple[MeetingFormat | None, str, str]:
    raw = (data.get("format") or "").strip()
    if raw not in (MeetingFormat.VIRTUAL.value, MeetingFormat.IN_PERSON.value):
        errors["format"] = "Choose virtual or in person."
        return None, "", ""
    meeting_format = MeetingFormat(raw)
    url = (data.get("conference_url") or "").strip()
    location = (data.get("location") or "").strip()
    if meeting_format == MeetingFormat.VIRTUAL:
        if url and (not url.startswith("https://") or len(url) > 2000 or " " in url):
            errors["conference_url"] = "Paste a meeting link that starts with https://."
        return meeting_format, url, ""
    if not location:
        errors["location"] = "Say where you will meet, e.g. a room or building."
    elif len(location) > 500:
        errors["location"] = "Keep the location under 500 characters."
    return meeting_format, "", location


# --- access -------------------------------------------------------------------------------


def _member_ids(meeting: Meeting) -> set[int]:
    return {a.participant_id for a in meeting.attendees}


def may_manage(actor: Actor, meeting: Meeting) -> bool:
    """Coordinators, and the meeting's own people, may change a meeting."""
    return actor.is_coordinator or (
        actor.participant_id is not None and actor.participant_id in _member_ids(meeting)
    )


def visible_meeting(
    session: Session, program: Program, meeting_id: int, actor: Actor
) -> Meeting | None:
    """The meeting if it is in ``program`` and the actor may see it (else None: a 404)."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None or meeting.program_id != program.id or not may_manage(actor, meeting):
        return None
    return meeting


def _relationship_people(relationship: Relationship) -> list[Participant]:
    return [relationship.mentee, relationship.mentor]


def circle_people(circle: Circle) -> list[Participant]:
    """A circle's active members who have not left, and its facilitator."""
    people = [m.participant for m in circle.members if m.left_at is None]
    if circle.facilitator is not None and circle.facilitator not in people:
        people.append(circle.facilitator)
    return [p for p in people if p.status == ParticipantStatus.ACTIVE]


def check_free(
    session: Session,
    people: Sequence[Participant],
    starts_at: datetime,
    ends_at: datetime,
    *,
    actor: Actor,
    ignore_meeting_id: int | None = None,
) -> None:
    """FormInvalid at ``start`` if anyone already has a scheduled meeting then."""
    query = (
        select(MeetingAttendee.participant_id)
        .join(Meeting, Meeting.id == MeetingAttendee.meeting_id)
        .where(
            MeetingAttendee.participant_id.in_([p.id for p in people]),
            Meeting.status == MeetingStatus.SCHEDULED,
            Meeting.starts_at < ends_at,
            Meeting.ends_at > starts_at,
        )
    )
    if ignore_meeting_id is not None:
        query = query.where(Meeting.id != ignore_meeting_id)
    busy = set(session.scalars(query))
    if not busy:
        return
    if actor.participant_id in busy:
        raise FormInvalid({"start": "You already have a meeting at that time; choose another."})
    names = ", ".join(p.display_name for p in people if p.id in busy)
    raise FormInvalid({"start": f"{names} already has a meeting at that time; choose another."})


# --- changes ------------------------------------------------------------------------------


def schedule_meeting(
    session: Session,
    *,
    program: Program,
    actor: Actor,
    draft: MeetingDraft,
    relationship: Relationship | None = None,
    circle: Circle | None = None,
    title: str = "",
) -> Meeting:
    """A new meeting of a relationship or a circle, with its sync intents (version 1)."""
    if (relationship is None) == (circle is None):
        raise ValueError("schedule a meeting for exactly one relationship or circle")
    if relationship is not None:
        if relationship.program_id != program.id:
            raise NotAllowed("this relationship is not in this program")
        if relationship.status != RelationshipStatus.ACTIVE:
            raise StateConflict("meetings can be scheduled only in an active relationship")
        people = _relationship_people(relationship)
        kind = MeetingKind.RELATIONSHIP
        names = f"{relationship.mentee.display_name} and {relationship.mentor.display_name}"
        title = title or f"Mentoring: {names}"
    else:
        assert circle is not None
        if circle.program_id != program.id:
            raise NotAllowed("this circle is not in this program")
        if circle.closed_at is not None:
            raise StateConflict("this circle is closed")
        people = circle_people(circle)
        kind = MeetingKind.CIRCLE
        title = title or f"Peer circle: {circle.name}"
    if not actor.is_coordinator and actor.participant_id not in {p.id for p in people}:
        raise NotAllowed("only the people in it or a coordinator can schedule this meeting")
    check_free(session, people, draft.starts_at, draft.ends_at, actor=actor)
    meeting = Meeting(
        program_id=program.id,
        kind=kind,
        relationship_id=relationship.id if relationship is not None else None,
        circle_id=circle.id if circle is not None else None,
        organizer_id=actor.participant_id,
        title=title[:200],
        version=1,
    )
    _apply_draft(meeting, draft)
    meeting.attendees = [MeetingAttendee(participant_id=p.id, participant=p) for p in people]
    session.add(meeting)
    session.flush()
    write_sync_intents(session, meeting, SyncOperation.CREATE)
    meetings_changed(session, meeting)
    return meeting


def _apply_draft(meeting: Meeting, draft: MeetingDraft) -> None:
    meeting.starts_at, meeting.ends_at = draft.starts_at, draft.ends_at
    meeting.time_zone, meeting.format = draft.time_zone, draft.format
    meeting.location, meeting.agenda = draft.location, draft.agenda
    if draft.conference_url or draft.format != MeetingFormat.VIRTUAL:
        meeting.conference_url = draft.conference_url
        meeting.conference_source = "pasted" if draft.conference_url else ""


def lock_meeting(session: Session, meeting: Meeting) -> None:
    """Reload ``meeting`` holding its row lock until commit, so concurrent changes queue.

    Two people rescheduling at once would otherwise both read version N and both write
    N+1; with the lock the second sees the first's change (and its status) before deciding.
    """
    session.refresh(meeting, with_for_update=True)


def reschedule_meeting(
    session: Session, meeting: Meeting, *, actor: Actor, draft: MeetingDraft
) -> Meeting:
    """Move or edit a scheduled meeting; its version goes up and calendars follow."""
    if not may_manage(actor, meeting):
        raise NotAllowed("only the people in this meeting or a coordinator can change it")
    lock_meeting(session, meeting)
    if meeting.status != MeetingStatus.SCHEDULED:
        raise StateConflict(f"a {meeting.status.value} meeting cannot be rescheduled")
    if meeting.kind == MeetingKind.SLOT_BOOKING and draft.starts_at != meeting.starts_at:
        raise StateConflict("a booked slot cannot be moved; cancel it and book another time")
    people = [a.participant for a in meeting.attendees]
    check_free(
        session, people, draft.starts_at, draft.ends_at, actor=actor, ignore_meeting_id=meeting.id
    )
    _apply_draft(meeting, draft)
    meeting.version += 1
    write_sync_intents(session, meeting, SyncOperation.UPDATE)
    meetings_changed(session, meeting)
    return meeting


def cancel_meeting(session: Session, meeting: Meeting, *, actor: Actor, reason: str) -> Meeting:
    """Cancel a scheduled meeting with a reason; calendars get the cancellation."""
    if not may_manage(actor, meeting):
        raise NotAllowed("only the people in this meeting or a coordinator can cancel it")
    lock_meeting(session, meeting)
    if meeting.status != MeetingStatus.SCHEDULED:
        raise StateConflict(f"this meeting is already {meeting.status.value}")
    reason = reason.strip()
    if not reason:
        raise FormInvalid({"reason": "Say why the meeting is cancelled; the others will see it."})
    if len(reason) > REASON_MAX:
        raise FormInvalid({"reason": f"Keep the reason under {REASON_MAX} characters."})
    meeting.status, meeting.cancel_reason = MeetingStatus.CANCELLED, reason
    meeting.version += 1
    booking = session.scalar(select(SlotBooking).where(SlotBooking.meeting_id == meeting.id))
    if booking is not None:
        booking.state = BookingState.CANCELLED  # the time can be booked again
    write_sync_intents(session, meeting, SyncOperation.CANCEL)
    meetings_changed(session, meeting)
    return meeting


def _call_off(session: Session, meeting: Meeting, reason: str) -> None:
    """Cancel without a person's permission check: the program's state requires it."""
    lock_meeting(session, meeting)
    if meeting.status != MeetingStatus.SCHEDULED:
        return  # changed under us: nothing left to call off
    meeting.status, meeting.cancel_reason = MeetingStatus.CANCELLED, reason
    meeting.version += 1
    booking = session.scalar(select(SlotBooking).where(SlotBooking.meeting_id == meeting.id))
    if booking is not None:
        booking.state = BookingState.CANCELLED
    write_sync_intents(session, meeting, SyncOperation.CANCEL)
    meetings_changed(session, meeting)


def cancel_meetings_of_relationship(
    session: Session, relationship: Relationship, *, now: datetime | None = None
) -> int:
    """A relationship closed: call off its meetings that have not started.

    Otherwise they would stay in both calendars, and their reminders would go out, for a
    pair that no longer exists. Meetings already held or missed stay as history.
    """
    return _call_off_upcoming(
        session,
        Meeting.relationship_id == relationship.id,
        "The mentoring relationship has ended.",
        now or utcnow(),
    )


def cancel_meetings_of_circle(
    session: Session, circle: Circle, *, now: datetime | None = None
) -> int:
    """A circle closed: call off its meetings that have not started (as for a pair)."""
    return _call_off_upcoming(
        session, Meeting.circle_id == circle.id, "The peer circle has closed.", now or utcnow()
    )


def _call_off_upcoming(
    session: Session, owner: ColumnElement[bool], reason: str, now: datetime
) -> int:
    meetings = session.scalars(
        select(Meeting)
        .where(owner, Meeting.status == MeetingStatus.SCHEDULED, Meeting.starts_at > now)
        .order_by(Meeting.id)
    ).all()
    for meeting in meetings:
        _call_off(session, meeting, reason)
    return len(meetings)


def cancel_meetings_of_departed(
    session: Session, participant: Participant, *, now: datetime | None = None
) -> int:
    """A person left the program: close their bookable slots, call off their bookings and
    drop them from their circles' meetings.

    The slots they published stop taking bookings, and every booked micro-mentoring
    session with them, as mentor or as mentee, that has not started is cancelled in every
    calendar. Call it once they are no longer active (or have left their circles): the
    upcoming meetings of each circle they were invited to are brought in line with the
    circle (:func:`sync_circle_attendees`), which removes them. (Their relationship
    meetings go with their relationships.)
    """
    now = now or utcnow()
    session.execute(
        update(Slot)
        .where(Slot.mentor_id == participant.id, Slot.active.is_(True))
        .values(active=False)
    )
    meetings = session.scalars(
        select(Meeting)
        .join(SlotBooking, SlotBooking.meeting_id == Meeting.id)
        .where(
            or_(SlotBooking.mentor_id == participant.id, SlotBooking.mentee_id == participant.id),
            SlotBooking.state == BookingState.BOOKED,
            Meeting.status == MeetingStatus.SCHEDULED,
            Meeting.starts_at > now,
        )
        .order_by(Meeting.id)
    ).all()
    for meeting in meetings:
        _call_off(session, meeting, "A participant has left the program.")
    circles = session.scalars(
        select(Circle)
        .where(
            Circle.id.in_(
                select(Meeting.circle_id)
                .join(MeetingAttendee, MeetingAttendee.meeting_id == Meeting.id)
                .where(
                    MeetingAttendee.participant_id == participant.id,
                    Meeting.status == MeetingStatus.SCHEDULED,
                    Meeting.starts_at > now,
                )
            )
        )
        .order_by(Circle.id)
    ).all()
    for circle in circles:
        sync_circle_attendees(session, circle, now=now)
    return len(meetings)


def sync_circle_attendees(session: Session, circle: Circle, *, now: datetime | None = None) -> int:
    """Invite exactly the circle's people (:func:`circle_people`) to its upcoming meetings.

    Call after members join or leave, or the facilitator changes, in the same transaction.
    Each scheduled meeting that has not started and whose attendees differ gets the new
    list and a new version: whoever left loses the event from their calendar (or gets an
    e-mailed cancellation), whoever joined gets it, the rest get the updated list, and
    reminders and feedback requests are planned again for the new attendees. Meetings
    already held, missed, cancelled or under way stay as they were; one nobody is left to
    attend is cancelled. Returns how many meetings changed; a second call changes nothing.
    """
    now = now or utcnow()
    session.flush()
    meetings = session.scalars(
        select(Meeting)
        .where(
            Meeting.circle_id == circle.id,
            Meeting.status == MeetingStatus.SCHEDULED,
            Meeting.starts_at > now,
        )
        .order_by(Meeting.id)
    ).all()
    people = _current_people(session, circle)
    return sum(_invite_exactly(session, meeting, people, now) for meeting in meetings)


def _current_people(session: Session, circle: Circle) -> dict[int, Participant]:
    """The circle's people as committed, read under the circle's row lock (PostgreSQL).

    Two changes to one circle (a coordinator adding someone while another removes, or a
    member withdrawing) take turns here, and the second reads what the first committed,
    not the members and statuses its session loaded before: otherwise it could invite
    back someone the first had just removed.
    """
    session.refresh(circle, with_for_update=True)
    fresh = {"populate_existing": True}
    members = session.scalars(
        select(CircleMember).where(CircleMember.circle_id == circle.id).execution_options(**fresh)
    ).all()
    ids = {m.participant_id for m in members} | {circle.facilitator_id} - {None}
    session.scalars(
        select(Participant).where(Participant.id.in_(ids)).execution_options(**fresh)
    ).all()
    session.expire(circle, ["members", "facilitator"])
    return {p.id: p for p in circle_people(circle)}


def _invite_exactly(
    session: Session, meeting: Meeting, people: dict[int, Participant], now: datetime
) -> bool:
    """Make ``people`` the meeting's attendees; False if they already were (or it started)."""
    if not people:  # nobody is left to meet: cancel it for those who were invited
        _call_off(session, meeting, "Nobody is left in the peer circle.")
        return True
    lock_meeting(session, meeting)
    if meeting.status != MeetingStatus.SCHEDULED or meeting.starts_at <= now:
        return False  # changed under us
    session.expire(meeting, ["attendees"])  # as committed by whoever held the lock before
    current = {a.participant_id for a in meeting.attendees}
    gone = [a for a in meeting.attendees if a.participant_id not in people]
    added = [p for pid, p in people.items() if pid not in current]
    if not gone and not added:
        return False
    removed = [a.participant for a in gone]
    for attendee in gone:
        meeting.attendees.remove(attendee)  # delete-orphan: the row goes
    for person in added:
        meeting.attendees.append(MeetingAttendee(participant_id=person.id, participant=person))
    meeting.version += 1
    write_roster_intents(session, meeting, added={p.id for p in added}, removed=removed)
    meetings_changed(session, meeting)
    return True


def mark_meeting(
    session: Session,
    meeting: Meeting,
    *,
    actor: Actor,
    status: MeetingStatus,
    now: datetime | None = None,
) -> Meeting:
    """Record after the start that a meeting was held or missed (correctable)."""
    now = now or utcnow()
    if status not in (MeetingStatus.HELD, MeetingStatus.MISSED):
        raise ValueError("a meeting is marked held or missed")
    if not may_manage(actor, meeting):
        raise NotAllowed("only the people in this meeting or a coordinator can record it")
    lock_meeting(session, meeting)
    if meeting.status == MeetingStatus.CANCELLED:
        raise StateConflict("a cancelled meeting cannot be marked held or missed")
    if meeting.starts_at > now:
        raise StateConflict("a meeting can be marked held or missed once it has started")
    if meeting.status == status:
        return meeting
    meeting.status = status
    for attendee in meeting.attendees:
        attendee.attended = status == MeetingStatus.HELD
    meeting.version += 1
    write_sync_intents(session, meeting, SyncOperation.UPDATE)
    meetings_changed(session, meeting)
    for attendee in meeting.attendees:  # meetings held count towards participation
        queue_participation_score(session, attendee.participant_id)
    return meeting


def upcoming_meetings(
    session: Session, participant: Participant, *, now: datetime | None = None, limit: int = 50
) -> list[Meeting]:
    """The participant's meetings that have not ended, soonest first (cancelled included)."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(Meeting)
            .join(MeetingAttendee, MeetingAttendee.meeting_id == Meeting.id)
            .where(MeetingAttendee.participant_id == participant.id, Meeting.ends_at > now)
            .order_by(Meeting.starts_at)
            .limit(limit)
        )
    )
