"""Weekly slots and suggestions across daylight-saving changes, and booking rules.

2026 transitions: the US springs forward on 8 March and falls back on 1 November; the UK
on 29 March and 25 October. Between them New York and London are 4 hours apart instead of 5.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.meetings.availability import availability_windows, suggest_times
from plugin.meetings.errors import (
    BookingLimitReached,
    FormInvalid,
    NotAllowed,
    SlotTaken,
    StateConflict,
)
from plugin.meetings.scheduling import Actor, cancel_meeting
from plugin.meetings.slots import (
    book_slot,
    create_slot,
    open_occurrences,
    parse_slot_form,
    slot_occurrences,
)
from plugin.meetings.times import Interval, LocalWindow, weekly_occurrences
from plugin.models import (
    BookingState,
    MeetingKind,
    MeetingStatus,
    Participant,
    Slot,
    SlotBooking,
    SyncIntent,
)
from tests.meetings.conftest import Pair

NEW_YORK, LONDON = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")


def tuesday_slot(session: Session, pair: Pair, **fields: str) -> Slot:
    form = {
        "weekday": "1",
        "start": "10:00",
        "end": "11:00",
        "time_zone": "America/New_York",
        "duration_minutes": "30",
        "cutoff_hours": "24",
        "per_mentee_limit": "1",
        "topics": "Residency, Research",
        "format": "virtual",
    }
    form.update(fields)
    draft = parse_slot_form(form, default_zone="UTC")
    return create_slot(session, program=pair.program, mentor=pair.mentor, draft=draft)


def test_a_new_york_slot_stays_at_10_local_and_moves_for_a_london_viewer_across_dst(
    session: Session, pair: Pair
) -> None:
    slot = tuesday_slot(session, pair)
    since = datetime(2026, 2, 24, tzinfo=UTC)
    until = datetime(2026, 11, 11, tzinfo=UTC)
    firsts = [
        o for o in slot_occurrences(slot, since, until) if o.start.astimezone(NEW_YORK).minute == 0
    ]
    # Every Tuesday, 10:00 in New York, whatever the offset.
    assert {o.start.astimezone(NEW_YORK).time() for o in firsts} == {time(10, 0)}
    assert len(firsts) == 38  # 24 February to 10 November
    london = {o.start.astimezone(NEW_YORK).date(): o.start.astimezone(LONDON) for o in firsts}
    expected = {
        date(2026, 3, 3): (15, "GMT"),  # both on winter time: 5 hours apart
        date(2026, 3, 10): (14, "GMT"),  # US moved on 8 March, UK not yet
        date(2026, 3, 24): (14, "GMT"),
        date(2026, 3, 31): (15, "BST"),  # UK moved on 29 March
        date(2026, 10, 20): (15, "BST"),
        date(2026, 10, 27): (14, "GMT"),  # UK back on 25 October, US not yet
        date(2026, 11, 3): (15, "GMT"),  # US back on 1 November
        date(2026, 11, 10): (15, "GMT"),
    }
    for day, (hour, name) in expected.items():
        assert (london[day].hour, london[day].tzname()) == (hour, name), day
    # In UTC the occurrence moves by an hour twice; locally it never moves.
    assert firsts[0].start == datetime(2026, 2, 24, 15, 0, tzinfo=UTC)
    assert london[date(2026, 3, 10)].astimezone(UTC) == datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


def test_a_london_mentee_books_during_the_gap_weeks_and_sees_the_right_hour(
    session: Session, pair: Pair
) -> None:
    slot = tuesday_slot(session, pair)
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    offered = open_occurrences(session, pair.program, mentee=pair.mentee, now=now)
    gap = [o for o in offered if o.start.astimezone(NEW_YORK).date() == date(2026, 3, 17)]
    assert [o.start.astimezone(LONDON).strftime("%H:%M") for o in gap] == ["14:00", "14:30"]
    booking = book_slot(
        session,
        slot=slot,
        mentee=pair.mentee,
        occurrence_start=gap[0].start,
        topic="Research",
        now=now,
    )
    meeting = booking.meeting
    assert meeting.kind == MeetingKind.SLOT_BOOKING
    assert meeting.relationship_id is None
    assert (meeting.starts_at, meeting.ends_at - meeting.starts_at) == (
        datetime(2026, 3, 17, 14, 0, tzinfo=UTC),
        timedelta(minutes=30),
    )
    assert meeting.time_zone == "America/New_York"
    assert len(session.scalars(select(SyncIntent)).all()) == 2
    again = open_occurrences(session, pair.program, mentee=pair.mentee, now=now)
    assert gap[0].start not in {o.start for o in again}


def test_suggestions_follow_each_persons_dst_and_skip_their_meetings() -> None:
    # London Mondays 14-16, New York Mondays 9-11: common 14-16 UTC in winter, 14-15 UTC
    # in the weeks the US is on summer time and the UK is not.
    mentee = [LocalWindow(0, time(14), time(16), "Europe/London")]
    mentor = [LocalWindow(0, time(9), time(11), "America/New_York")]
    since = datetime(2026, 3, 2, tzinfo=UTC)
    suggestions = suggest_times(
        [mentee, mentor],
        since=since,
        until=since + timedelta(days=16),
        duration=timedelta(hours=1),
        busy=[Interval(datetime(2026, 3, 2, 14, tzinfo=UTC), datetime(2026, 3, 2, 15, tzinfo=UTC))],
    )
    assert [s.start for s in suggestions] == [
        datetime(2026, 3, 2, 15, tzinfo=UTC),
        datetime(2026, 3, 9, 14, tzinfo=UTC),
        datetime(2026, 3, 16, 14, tzinfo=UTC),
    ]
    assert (
        suggest_times(
            [[], []], since=since, until=since + timedelta(days=7), duration=timedelta(minutes=30)
        )
        == []
    )


def test_a_window_on_the_night_the_clocks_change_is_still_expanded() -> None:
    # 01:00-03:00 on a Sunday in New York: 8 March 2026 has no 02:00-03:00.
    window = LocalWindow(6, time(1), time(3), "America/New_York")
    since = datetime(2026, 3, 7, tzinfo=UTC)
    (spring,) = weekly_occurrences(window, since, since + timedelta(days=2))
    assert spring.end - spring.start == timedelta(hours=1)
    (autumn,) = weekly_occurrences(
        window, datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    )
    assert autumn.end - autumn.start == timedelta(hours=3)


def test_malformed_availability_is_skipped_not_guessed(pair: Pair) -> None:
    assert pair.mentee.profile is not None
    # JSON written by an older form or by hand may hold anything.
    stored: list[Any] = [
        {"day": 0, "start": "09:00", "end": "10:00"},
        {"day": 9, "start": "09:00", "end": "10:00"},
        {"day": 1, "start": "25:00", "end": "26:00"},
        {"day": 2, "start": "11:00", "end": "10:00"},
        "Mondays",
    ]
    pair.mentee.profile.availability = stored
    assert availability_windows(pair.mentee.profile) == [
        LocalWindow(0, time(9), time(10), "Europe/London")
    ]


def test_cut_off_limit_topic_and_eligibility_are_enforced(
    session: Session, pair: Pair, enroll: Callable[..., Participant]
) -> None:
    slot = tuesday_slot(session, pair, cutoff_hours="48")
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # a Monday
    tomorrow = datetime(2026, 12, 8, 15, 0, tzinfo=UTC)  # 10:00 in New York
    next_week = tomorrow + timedelta(weeks=1)
    with pytest.raises(StateConflict, match="closed 48 hours before"):
        book_slot(
            session,
            slot=slot,
            mentee=pair.mentee,
            occurrence_start=tomorrow,
            topic="Research",
            now=now,
        )
    with pytest.raises(FormInvalid):
        book_slot(
            session,
            slot=slot,
            mentee=pair.mentee,
            occurrence_start=next_week,
            topic="Golf",
            now=now,
        )
    with pytest.raises(FormInvalid):  # not an occurrence of this slot
        book_slot(
            session,
            slot=slot,
            mentee=pair.mentee,
            occurrence_start=next_week + timedelta(minutes=10),
            topic="Research",
            now=now,
        )
    with pytest.raises(NotAllowed):
        book_slot(
            session,
            slot=slot,
            mentee=pair.mentor,
            occurrence_start=next_week,
            topic="Research",
            now=now,
        )
    first = book_slot(
        session,
        slot=slot,
        mentee=pair.mentee,
        occurrence_start=next_week,
        topic="Research",
        now=now,
    )
    with pytest.raises(BookingLimitReached):
        book_slot(
            session,
            slot=slot,
            mentee=pair.mentee,
            occurrence_start=next_week + timedelta(minutes=30),
            topic="Research",
            now=now,
        )
    other = enroll(pair.program, None, mentee=True)
    with pytest.raises(SlotTaken):
        book_slot(
            session, slot=slot, mentee=other, occurrence_start=next_week, topic="Research", now=now
        )
    # Cancelling the meeting frees the time (and the mentee's allowance).
    cancel_meeting(session, first.meeting, actor=Actor(pair.mentee, False), reason="Exam moved")
    rebooked = book_slot(
        session, slot=slot, mentee=other, occurrence_start=next_week, topic="Residency", now=now
    )
    assert rebooked.meeting.agenda == "Residency"
    assert len(session.scalars(select(SlotBooking)).all()) == 2


def test_slot_form_errors_are_per_field() -> None:
    with pytest.raises(FormInvalid) as refused:
        parse_slot_form(
            {
                "weekday": "8",
                "start": "xx",
                "end": "10:00",
                "time_zone": "Nowhere/Here",
                "duration_minutes": "45",
                "cutoff_hours": "-1",
                "per_mentee_limit": "0",
                "conference_url": "ftp://x",
            },
            default_zone="UTC",
        )
    assert set(refused.value.errors) == {
        "weekday",
        "start",
        "time_zone",
        "duration_minutes",
        "cutoff_hours",
        "per_mentee_limit",
        "conference_url",
    }


def test_overlapping_slots_of_one_mentor_are_refused(session: Session, pair: Pair) -> None:
    tuesday_slot(session, pair)
    with pytest.raises(FormInvalid):
        tuesday_slot(session, pair, start="10:30", end="11:30")
    assert tuesday_slot(session, pair, start="11:00", end="11:30").id


@pytest.mark.parametrize("who", ["mentor", "mentee"])
def test_someone_who_withdraws_takes_their_slots_and_booked_sessions_with_them(
    session: Session, pair: Pair, who: str
) -> None:
    from plugin.programs.enrollment import withdraw

    slot = tuesday_slot(session, pair)
    offered = open_occurrences(session, pair.program, mentee=pair.mentee)
    booking = book_slot(
        session, slot=slot, mentee=pair.mentee, occurrence_start=offered[0].start, topic="Research"
    )
    session.flush()
    withdraw(session, pair.mentor if who == "mentor" else pair.mentee)
    session.flush()
    session.refresh(booking.meeting)
    assert booking.meeting.status == MeetingStatus.CANCELLED
    assert booking.state == BookingState.CANCELLED
    assert booking.meeting.version == 2
    # Only a departing mentor's slots close; a departing mentee's bookings just end.
    session.refresh(slot)
    assert slot.active is (who != "mentor")
