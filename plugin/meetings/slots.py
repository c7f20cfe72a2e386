"""Micro-mentoring: mentors publish weekly slots; any mentee of the program books one.

A slot is a weekly wall-clock window in the mentor's zone, cut into 15- or 30-minute
occurrences computed date by date in that zone, so it stays at the same local time across
daylight-saving changes. Booking one creates a meeting (no relationship needed).

Double booking is impossible: a booking first bumps the slot's ``bookings_version`` (a row
lock until commit on PostgreSQL, the write lock on SQLite), so bookings of one slot run one
after the other and see each other; and a partial unique index on (mentor, start) refuses
a second live booking of the same time whatever path it came by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.meetings.errors import (
    BookingLimitReached,
    FormInvalid,
    NotAllowed,
    SlotTaken,
    StateConflict,
)
from plugin.meetings.history import meetings_changed
from plugin.meetings.scheduling import Actor, check_free
from plugin.meetings.sync import write_sync_intents
from plugin.meetings.times import (
    Interval,
    LocalWindow,
    is_valid_zone,
    parse_hhmm,
    weekly_occurrences,
)
from plugin.models import (
    BookingState,
    Meeting,
    MeetingAttendee,
    MeetingFormat,
    MeetingKind,
    Participant,
    ParticipantStatus,
    Program,
    Slot,
    SlotBooking,
    SyncOperation,
)

__all__ = [
    "OpenOccurrence",
    "SlotDraft",
    "book_slot",
    "create_slot",
    "deactivate_slot",
    "open_occurrences",
    "parse_slot_form",
    "slot_occurrences",
]

DURATIONS = (15, 30)
MAX_TOPICS = 12
#: How far ahead mentees can book.
BOOKING_HORIZON = timedelta(weeks=4)


@dataclass(frozen=True)
class SlotDraft:
    weekday: int
    start: str
    end: str
    time_zone: str
    duration_minutes: int
    cutoff_hours: int
    per_mentee_limit: int
    topics: list[str]
    format: MeetingFormat
    conference_url: str
    location: str


def _int(data: Mapping[str, str], name: str, low: int, high: int, errors: dict[str, str]) -> int:
    try:
        value = int((data.get(name) or "").strip())
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        errors[name] = f"Enter a whole number from {low} to {high}."
    return value


def parse_slot_form(data: Mapping[str, str], *, default_zone: str) -> SlotDraft:
    """A slot draft from form fields, or FormInvalid with a message per field."""
    errors: dict[str, str] = {}
    weekday = _int(data, "weekday", 0, 6, errors)
    if "weekday" in errors:
        errors["weekday"] = "Choose a day of the week."
    start, end = (data.get("start") or "").strip(), (data.get("end") or "").strip()
    start_t, end_t = parse_hhmm(start), parse_hhmm(end)
    if start_t is None:
        errors["start"] = "Enter a start time as HH:MM (24-hour)."
    if end_t is None:
        errors["end"] = "Enter an end time as HH:MM (24-hour)."
    zone_name = (data.get("time_zone") or default_zone).strip()
    if not is_valid_zone(zone_name):
        errors["time_zone"] = "Choose a time zone from the list, e.g. America/New_York."
    duration = _int(data, "duration_minutes", 15, 30, errors)
    if duration not in DURATIONS:
        errors["duration_minutes"] = "Choose 15 or 30 minutes."
    if start_t is not None and end_t is not None and "duration_minutes" not in errors:
        minutes = (end_t.hour * 60 + end_t.minute) - (start_t.hour * 60 + start_t.minute)
        if minutes < duration:
            errors["end"] = f"End at least {duration} minutes after the start, on the same day."
    cutoff = _int(data, "cutoff_hours", 0, 168, errors)
    limit = _int(data, "per_mentee_limit", 1, 10, errors)
    topics = [t.strip() for t in (data.get("topics") or "").replace("\n", ",").split(",")]
    topics = [t[:200] for t in topics if t]
    if len(topics) > MAX_TOPICS:
        errors["topics"] = f"List at most {MAX_TOPICS} topics."
    raw_format = (data.get("format") or MeetingFormat.VIRTUAL.value).strip()
    if raw_format not in (MeetingFormat.VIRTUAL.value, MeetingFormat.IN_PERSON.value):
        errors["format"] = "Choose virtual or in person."
        raw_format = MeetingFormat.VIRTUAL.value
    url = (data.get("conference_url") or "").strip()
    if url and not url.startswith("https://"):
        errors["conference_url"] = "Paste a meeting link that starts with https://."
    location = (data.get("location") or "").strip()[:500]
    if raw_format == MeetingFormat.IN_PERSON.value and not location:
        errors["location"] = "Say where mentees will find you."
    if errors:
        raise FormInvalid(errors)
    return SlotDraft(
        weekday=weekday,
        start=start,
        end=end,
        time_zone=zone_name,
        duration_minutes=duration,
        cutoff_hours=cutoff,
        per_mentee_limit=limit,
        topics=topics,
        format=MeetingFormat(raw_format),
        conference_url=url,
        location=location,
    )


def create_slot(
    session: Session, *, program: Program, mentor: Participant, draft: SlotDraft
) -> Slot:
    """Publish a weekly slot for ``mentor`` (who must be an active mentor of ``program``)."""
    if mentor.program_id != program.id or not mentor.is_mentor:
        raise NotAllowed("only mentors of this program publish slots")
    if mentor.status != ParticipantStatus.ACTIVE:
        raise NotAllowed("this mentor is not active in the program")
    start_t, end_t = parse_hhmm(draft.start), parse_hhmm(draft.end)
    assert start_t is not None
    assert end_t is not None
    for other in session.scalars(
        select(Slot).where(Slot.mentor_id == mentor.id, Slot.active.is_(True))
    ):
        if (
            other.weekday == draft.weekday
            and other.time_zone == draft.time_zone
            and other.local_start < end_t
            and start_t < other.local_end
        ):
            raise FormInvalid(
                {"start": "This overlaps one of your slots; change or remove that one."}
            )
    slot = Slot(
        program_id=program.id,
        mentor_id=mentor.id,
        weekday=draft.weekday,
        local_start=start_t,
        local_end=end_t,
        time_zone=draft.time_zone,
        duration_minutes=draft.duration_minutes,
        cutoff_hours=draft.cutoff_hours,
        per_mentee_limit=draft.per_mentee_limit,
        topics=draft.topics,
        format=draft.format,
        conference_url=draft.conference_url,
        location=draft.location,
    )
    session.add(slot)
    session.flush()
    return slot


def deactivate_slot(session: Session, slot: Slot, *, actor: Actor) -> None:
    """Stop offering a slot; bookings already made stay (cancel them one by one)."""
    if not actor.is_coordinator and actor.participant_id != slot.mentor_id:
        raise NotAllowed("only the mentor or a coordinator can remove this slot")
    slot.active = False
    session.flush()


def slot_occurrences(slot: Slot, since: datetime, until: datetime) -> list[Interval]:
    """Bookable occurrences of ``slot`` starting in ``[since, until)``, in UTC."""
    window = LocalWindow(slot.weekday, slot.local_start, slot.local_end, slot.time_zone)
    step = timedelta(minutes=slot.duration_minutes)
    out: list[Interval] = []
    # Widen by a day so a window that started before ``since`` still yields later pieces.
    for span in weekly_occurrences(window, since - timedelta(days=1), until):
        start = span.start
        while start + step <= span.end:
            if since <= start < until:
                out.append(Interval(start, start + step))
            start += step
    return out


@dataclass(frozen=True)
class OpenOccurrence:
    slot: Slot
    start: datetime
    end: datetime


def open_occurrences(
    session: Session, program: Program, *, mentee: Participant, now: datetime | None = None
) -> list[OpenOccurrence]:
    """Occurrences a mentee can book now: active slots, before cut-off, not taken."""
    now = now or utcnow()
    until = now + BOOKING_HORIZON
    slots = session.scalars(
        select(Slot)
        .join(Participant, Participant.id == Slot.mentor_id)
        .where(
            Slot.program_id == program.id,
            Slot.active.is_(True),
            Slot.mentor_id != mentee.id,
            Participant.status == ParticipantStatus.ACTIVE,
        )
        .order_by(Slot.id)
    ).all()
    taken = {
        (mentor_id, start)
        for mentor_id, start in session.execute(
            select(SlotBooking.mentor_id, SlotBooking.occurrence_start).where(
                SlotBooking.state == BookingState.BOOKED,
                SlotBooking.occurrence_start >= now,
                SlotBooking.occurrence_start < until,
            )
        ).all()
    }
    found: list[OpenOccurrence] = []
    for slot in slots:
        closes = timedelta(hours=slot.cutoff_hours)
        for occ in slot_occurrences(slot, now + closes, until):
            if (slot.mentor_id, occ.start) not in taken:
                found.append(OpenOccurrence(slot, occ.start, occ.end))
    found.sort(key=lambda o: (o.start, o.slot.id))
    return found


def book_slot(
    session: Session,
    *,
    slot: Slot,
    mentee: Participant,
    occurrence_start: datetime,
    topic: str,
    now: datetime | None = None,
) -> SlotBooking:
    """Book one occurrence for ``mentee``: creates the meeting and its sync intents.

    Raises SlotTaken if someone else has it, BookingLimitReached at the per-mentee limit,
    StateConflict after the cut-off, FormInvalid for a bad topic or a time that is not one
    of the slot's occurrences, NotAllowed for someone who is not a mentee of the program.
    """
    now = now or utcnow()
    if mentee.program_id != slot.program_id or not mentee.is_mentee:
        raise NotAllowed("only mentees of this program can book this slot")
    if mentee.status != ParticipantStatus.ACTIVE or mentee.id == slot.mentor_id:
        raise NotAllowed("you cannot book this slot")
    if not slot.active:
        raise StateConflict("this slot is no longer offered")
    step = timedelta(minutes=slot.duration_minutes)
    valid = slot_occurrences(slot, occurrence_start - timedelta(minutes=1), occurrence_start + step)
    if not any(o.start == occurrence_start for o in valid):
        raise FormInvalid({"occurrence": "Choose one of the listed times."})
    if occurrence_start - timedelta(hours=slot.cutoff_hours) < now:
        raise StateConflict(
            f"bookings for this time closed {slot.cutoff_hours} hours before it starts"
        )
    topic = topic.strip()
    if slot.topics and topic not in slot.topics:
        raise FormInvalid({"topic": "Choose a topic from the list."})
    if not topic:
        raise FormInvalid({"topic": "Say what you would like to talk about."})

    # Serialise the slot's bookings: the second waits here for the first to commit.
    session.execute(
        update(Slot)
        .where(Slot.id == slot.id)
        .values(bookings_version=Slot.bookings_version + 1)
        .execution_options(synchronize_session=False)
    )
    held = session.scalar(
        select(func.count())
        .select_from(SlotBooking)
        .where(
            SlotBooking.slot_id == slot.id,
            SlotBooking.mentee_id == mentee.id,
            SlotBooking.state == BookingState.BOOKED,
            SlotBooking.occurrence_start >= now,
        )
    )
    if (held or 0) >= slot.per_mentee_limit:
        raise BookingLimitReached(
            f"you already hold {held} upcoming booking(s) with this mentor, the most this "
            "slot allows; cancel one to book another"
        )
    taken = session.scalar(
        select(SlotBooking.id).where(
            SlotBooking.mentor_id == slot.mentor_id,
            SlotBooking.occurrence_start == occurrence_start,
            SlotBooking.state == BookingState.BOOKED,
        )
    )
    if taken is not None:
        raise SlotTaken("someone booked this time a moment ago; choose another")
    mentor = slot.mentor
    check_free(
        session,
        [mentee, mentor],
        occurrence_start,
        occurrence_start + step,
        actor=Actor(participant=mentee, is_coordinator=False),
    )
    meeting = Meeting(
        program_id=slot.program_id,
        kind=MeetingKind.SLOT_BOOKING,
        organizer_id=mentee.id,
        title=f"Micro-mentoring: {topic}"[:200],
        starts_at=occurrence_start,
        ends_at=occurrence_start + step,
        time_zone=slot.time_zone,
        format=slot.format,
        conference_url=slot.conference_url,
        conference_source="pasted" if slot.conference_url else "",
        location=slot.location,
        agenda=topic,
        version=1,
    )
    meeting.attendees = [
        MeetingAttendee(participant_id=mentor.id, participant=mentor),
        MeetingAttendee(participant_id=mentee.id, participant=mentee),
    ]
    booking = SlotBooking(
        slot_id=slot.id,
        mentor_id=slot.mentor_id,
        mentee_id=mentee.id,
        occurrence_start=occurrence_start,
        topic=topic,
        meeting=meeting,
    )
    try:
        with session.begin_nested():
            session.add_all([meeting, booking])
            session.flush()
    except IntegrityError:
        raise SlotTaken("someone booked this time a moment ago; choose another") from None
    write_sync_intents(session, meeting, SyncOperation.CREATE)
    meetings_changed(session, meeting)  # reminders and the feedback request
    return booking
