"""Meeting pages: scheduling, detail changes, the list in each viewer's zone, slots and
booking, the calendar panel and the ICS feed; who may open what."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.meetings.scheduling import schedule_meeting
from plugin.models import (
    CalendarConnection,
    CalendarFeed,
    Circle,
    CircleMember,
    ConnectionHealth,
    Meeting,
    MeetingStatus,
    Participant,
    Program,
    Slot,
    SlotBooking,
    SyncIntent,
    User,
)
from tests.meetings.conftest import Pair, draft
from tests.programs.conftest import LEARNER, Person, Tenant
from tests.programs.forms import database_snapshot, field_error, page_alert

Persons = Callable[..., Person]
#: Pages join start and end times with an en dash.
DASH = "\N{EN DASH}"


def as_mentee(as_person: Persons, pair: Pair) -> Person:
    return as_person(pair.tenant, pair.mentee_user, CourseRole.LEARNER)


def as_mentor(as_person: Persons, pair: Pair) -> Person:
    return as_person(pair.tenant, pair.mentor_user, CourseRole.INSTRUCTOR)


def next_local(zone: str, days: int = 5, hour: int = 10) -> datetime:
    return (datetime.now(ZoneInfo(zone)) + timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )


def custom_form(**fields: str) -> dict[str, str]:
    day = next_local("Europe/London").date().isoformat()
    form = {
        "suggestion": "custom",
        "date": day,
        "start": "10:00",
        "end": "10:45",
        "time_zone": "Europe/London",
        "format": "virtual",
        "conference_url": "https://meet.example.edu/r1",
        "agenda": "Abstract for the spring conference",
    }
    form.update(fields)
    return form


def new_meeting_url(pair: Pair) -> str:
    return f"/programs/{pair.program.id}/relationships/{pair.relationship.id}/meetings/new"


def test_a_mentee_schedules_from_a_suggestion_shown_in_their_own_zone(
    session: Session, make_pair: Callable[..., Pair], as_person: Persons
) -> None:
    # Both free on Wednesdays: 15:00-17:00 in London, 10:00-12:00 in New York.
    pair = make_pair(
        mentee_availability=[{"day": 2, "start": "15:00", "end": "17:00"}],
        mentor_availability=[{"day": 2, "start": "10:00", "end": "12:00"}],
    )
    person = as_mentee(as_person, pair)
    page = person.get(new_meeting_url(pair))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "times in your zone, Europe/London" in html
    assert "Wed " in html
    assert f"15:00{DASH}15:30" in html
    start = html.split('name="suggestion" value="', 1)[1].split('"', 1)[0]
    response = person.post(new_meeting_url(pair), {**custom_form(), "suggestion": start})
    assert response.status_code == 303
    meeting = session.scalars(select(Meeting)).one()
    assert meeting.starts_at.astimezone(ZoneInfo("Europe/London")).hour == 15
    assert meeting.starts_at.astimezone(ZoneInfo("America/New_York")).hour == 10
    assert len(session.scalars(select(SyncIntent)).all()) == 2


def test_the_same_meeting_is_shown_to_each_person_in_their_zone(
    session: Session, pair: Pair, as_person: Persons
) -> None:
    start = datetime(2027, 1, 13, 15, 0, tzinfo=UTC)
    schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentee),
        draft=draft(starts_at=start, ends_at=start + timedelta(minutes=30)),
        relationship=pair.relationship,
    )
    url = f"/programs/{pair.program.id}/meetings/"
    london = as_mentee(as_person, pair).get(url).get_data(as_text=True)
    new_york = as_mentor(as_person, pair).get(url).get_data(as_text=True)
    assert f"Wed 13 Jan 2027, 15:00{DASH}15:30" in london
    assert f"Wed 13 Jan 2027, 10:00{DASH}10:30" in new_york


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start": "11:00", "end": "10:00"}, "End the meeting after it starts."),
        ({"date": "2020-01-07"}, "Choose a time in the future."),
        ({"time_zone": "Atlantis/Capital"}, "Choose a time zone from the list"),
        ({"conference_url": "http://meet.example.edu/r1"}, "starts with https://"),
        ({"format": "in_person", "location": ""}, "Say where you will meet"),
    ],
)
def test_bad_input_is_refused_at_the_field_with_400_and_nothing_changes(
    session: Session, pair: Pair, as_person: Persons, fields: dict[str, str], message: str
) -> None:
    response = as_mentee(as_person, pair).post(new_meeting_url(pair), custom_form(**fields))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in html
    assert 'aria-invalid="true"' in html
    assert session.scalars(select(Meeting)).all() == []
    assert session.scalars(select(SyncIntent)).all() == []


def test_a_time_overlapping_ones_own_meeting_is_refused(
    session: Session, pair: Pair, as_person: Persons
) -> None:
    person = as_mentee(as_person, pair)
    assert person.post(new_meeting_url(pair), custom_form()).status_code == 303
    response = person.post(new_meeting_url(pair), custom_form(start="10:30", end="11:00"))
    assert response.status_code == 400
    assert "You already have a meeting at that time" in response.get_data(as_text=True)
    assert len(session.scalars(select(Meeting)).all()) == 1


def test_outsiders_get_404_and_coordinators_get_in(
    session: Session,
    pair: Pair,
    as_person: Persons,
    make_user: Callable[..., User],
    make_tenant: Callable[..., Tenant],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> None:
    meeting = schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentee),
        draft=draft(),
        relationship=pair.relationship,
    )
    detail = f"/programs/{pair.program.id}/meetings/{meeting.id}"
    # Another mentee of the same program.
    classmate = make_user(pair.tenant, LEARNER)
    enroll(pair.program, classmate, mentee=True)
    other = as_person(pair.tenant, classmate, CourseRole.LEARNER)
    assert other.get(new_meeting_url(pair)).status_code == 404
    assert other.get(detail).status_code == 404
    assert other.post(f"{detail}/cancel", {"reason": "x"}).status_code == 404
    # Someone from another course, even with their own program.
    elsewhere = make_tenant()
    stranger = make_user(elsewhere, LEARNER)
    enroll(make_program(elsewhere), stranger, mentee=True)
    outsider = as_person(elsewhere, stranger, CourseRole.LEARNER)
    assert outsider.get(detail).status_code == 404
    assert outsider.get(new_meeting_url(pair)).status_code == 404
    # The course's instructor coordinates every program of the course.
    coordinator = as_person(pair.tenant, pair.coordinator_user, CourseRole.INSTRUCTOR)
    assert coordinator.get(detail).status_code == 200
    assert coordinator.get(new_meeting_url(pair)).status_code == 200
    session.refresh(meeting)
    assert meeting.status == MeetingStatus.SCHEDULED


def test_detail_page_reschedules_cancels_with_a_reason_and_refuses_without(
    session: Session, pair: Pair, as_person: Persons
) -> None:
    person = as_mentor(as_person, pair)
    person.post(new_meeting_url(pair), custom_form())
    meeting = session.scalars(select(Meeting)).one()
    base = f"/programs/{pair.program.id}/meetings/{meeting.id}"
    assert "Reschedule or edit" in person.get(base).get_data(as_text=True)
    moved = person.post(f"{base}/reschedule", custom_form(start="12:00", end="12:30"))
    assert moved.status_code == 303
    session.refresh(meeting)
    assert (meeting.version, meeting.starts_at.astimezone(ZoneInfo("Europe/London")).hour) == (
        2,
        12,
    )
    refused = person.post(f"{base}/cancel", {"reason": ""})
    assert refused.status_code == 400
    assert "Say why the meeting is cancelled" in refused.get_data(as_text=True)
    session.refresh(meeting)
    assert meeting.status == MeetingStatus.SCHEDULED
    assert person.post(f"{base}/cancel", {"reason": "On call"}).status_code == 303
    session.refresh(meeting)
    assert (meeting.status, meeting.version, meeting.cancel_reason) == (
        MeetingStatus.CANCELLED,
        3,
        "On call",
    )
    assert person.post(f"{base}/record", {"status": "held"}).status_code == 409


@pytest.mark.parametrize(
    ("action", "form", "field", "says"),
    [
        ("reschedule", {"start": "12:00", "end": "11:00"}, "end", "after it starts"),
        ("reschedule", {"time_zone": "Atlantis/Capital"}, "time_zone", "from the list"),
        ("reschedule", {"conference_url": "ftp://x"}, "conference_url", "https://"),
        ("cancel", {"reason": "  "}, "reason", "Say why the meeting is cancelled"),
        ("record", {"status": "bogus"}, None, "Choose held or missed."),
    ],
)
def test_bad_changes_on_the_detail_page_are_refused_and_change_nothing(
    session: Session,
    pair: Pair,
    as_person: Persons,
    action: str,
    form: dict[str, str],
    field: str | None,
    says: str,
) -> None:
    person = as_mentor(as_person, pair)
    person.post(new_meeting_url(pair), custom_form())
    meeting = session.scalars(select(Meeting)).one()
    before = database_snapshot(session)
    data = custom_form(**form) if action == "reschedule" else form
    response = person.post(f"/programs/{pair.program.id}/meetings/{meeting.id}/{action}", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    if field is None:  # buttons, not a field: said on top
        assert says in page_alert(html)
    else:
        assert says in field_error(html, field)
    assert database_snapshot(session) == before


def test_the_ics_feed_lists_meetings_by_key_and_version_and_dies_when_revoked(
    session: Session, pair: Pair, as_person: Persons, client: FlaskClient
) -> None:
    person = as_mentee(as_person, pair)
    person.post(new_meeting_url(pair), custom_form())
    meeting = session.scalars(select(Meeting)).one()
    page = person.get(f"/programs/{pair.program.id}/meetings/")
    assert "Not connected" in page.get_data(as_text=True)
    assert person.post(f"/programs/{pair.program.id}/calendar/feed/open").status_code == 303
    feed = session.scalars(select(CalendarFeed)).one()
    panel = person.get(f"/programs/{pair.program.id}/meetings/").get_data(as_text=True)
    assert f"/feeds/{feed.token}.ics" in panel
    person.post(f"/programs/{pair.program.id}/meetings/{meeting.id}/cancel", {"reason": "Ill"})

    response = client.get(f"/feeds/{feed.token}.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar = icalendar.Calendar.from_ical(response.data)
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == meeting.sync_key_for(pair.mentee.id)
    assert event.decoded("SEQUENCE") == 2
    assert str(event["STATUS"]) == "CANCELLED"
    assert event.decoded("DTSTART") == meeting.starts_at

    person.post(f"/programs/{pair.program.id}/calendar/feed/revoke")
    assert client.get(f"/feeds/{feed.token}.ics").status_code == 404
    assert client.get("/feeds/not-a-token.ics").status_code == 404


@pytest.mark.parametrize(
    ("health", "synced", "revoked", "error", "text"),
    [
        (ConnectionHealth.OK, False, False, "", "Connected: meetings will appear in your Google"),
        (ConnectionHealth.OK, True, False, "", "Working: meetings appear in your Google calendar"),
        (
            ConnectionHealth.FAILING,
            True,
            False,
            "google returned 503 backendError",
            "Failing: your Google calendar did not accept the latest changes (the calendar "
            "service was unavailable)",
        ),
        (
            ConnectionHealth.REVOKED,
            True,
            True,
            "Google token refresh failed: invalid_grant: Token has been expired or revoked.",
            "Disconnected: your Google calendar stopped working (access was withdrawn or the "
            "sign-in expired)",
        ),
    ],
)
def test_the_calendar_panel_says_whether_the_connection_works(
    session: Session,
    pair: Pair,
    as_person: Persons,
    health: ConnectionHealth,
    synced: bool,
    revoked: bool,
    error: str,
    text: str,
) -> None:
    session.add(
        CalendarConnection(
            participant_id=pair.mentor.id,
            provider="google",
            health=health,
            last_error=error,
            last_synced_at=datetime.now(UTC) if synced else None,
            revoked_at=datetime.now(UTC) if revoked else None,
        )
    )
    session.flush()
    html = as_mentor(as_person, pair).get(f"/programs/{pair.program.id}/meetings/")
    assert text in html.get_data(as_text=True)


def test_a_mentor_publishes_a_slot_and_two_mentees_cannot_book_the_same_time(
    session: Session,
    pair: Pair,
    as_person: Persons,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    mentor = as_mentor(as_person, pair)
    slots_url = f"/programs/{pair.program.id}/slots/"
    bad = mentor.post(
        slots_url,
        {
            "weekday": "1",
            "start": "14:00",
            "end": "14:10",
            "duration_minutes": "30",
            "cutoff_hours": "2",
            "per_mentee_limit": "1",
        },
    )
    assert bad.status_code == 400
    assert "End at least 30 minutes after the start" in bad.get_data(as_text=True)
    assert session.scalars(select(Slot)).all() == []
    created = mentor.post(
        slots_url,
        {
            "weekday": "1",
            "start": "14:00",
            "end": "15:00",
            "time_zone": "America/New_York",
            "duration_minutes": "30",
            "cutoff_hours": "2",
            "per_mentee_limit": "1",
            "topics": "Residency applications, Research",
            "format": "virtual",
            "conference_url": "https://meet.example.edu/omar",
        },
    )
    assert created.status_code == 303
    slot = session.scalars(select(Slot)).one()
    assert f"Tuesdays 14:00{DASH}15:00 (America/New_York)" in mentor.get(slots_url).get_data(
        as_text=True
    )

    book_url = f"/programs/{pair.program.id}/book"
    mentee = as_mentee(as_person, pair)
    page = mentee.get(book_url).get_data(as_text=True)
    occurrence = page.split('name="occurrence"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    form = {"slot_id": str(slot.id), "occurrence": occurrence, "topic": "Research"}
    assert mentee.post(book_url, form).status_code == 303
    booking = session.scalars(select(SlotBooking)).one()
    assert booking.meeting.kind.value == "slot_booking"
    assert booking.meeting.conference_url == "https://meet.example.edu/omar"

    classmate = make_user(pair.tenant, LEARNER)
    enroll(pair.program, classmate, mentee=True)
    second = as_person(pair.tenant, classmate, CourseRole.LEARNER)
    assert occurrence not in second.get(book_url).get_data(as_text=True)
    taken = second.post(book_url, form)
    assert taken.status_code == 409
    assert "someone booked this time" in taken.get_data(as_text=True).lower()
    assert len(session.scalars(select(SlotBooking)).all()) == 1
    # A mentor's own page is not for mentees, and the other way round.
    assert mentee.get(slots_url).status_code == 404
    assert mentor.get(book_url).status_code == 404


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"occurrence": "next tuesday"}, "Choose one of the listed times."),
        ({"occurrence": "{first}T19:07:00+00:00"}, "Choose one of the listed times."),
        ({"occurrence": "{first}T19:00:00"}, "Choose one of the listed times."),
        ({"topic": "Astrology"}, "Choose a topic from the list."),
    ],
)
def test_a_bad_booking_is_refused_at_its_slot_and_changes_nothing(
    session: Session, pair: Pair, as_person: Persons, change: dict[str, str], says: str
) -> None:
    from datetime import time

    from plugin.models import MeetingFormat

    slot = Slot(
        program_id=pair.program.id,
        mentor_id=pair.mentor.id,
        weekday=1,
        local_start=time(14, 0),
        local_end=time(15, 0),
        time_zone="America/New_York",
        cutoff_hours=2,
        topics=["Research"],
        format=MeetingFormat.VIRTUAL,
        conference_url="https://meet.example.edu/omar",
    )
    session.add(slot)
    session.flush()
    mentee = as_mentee(as_person, pair)
    page = mentee.get(f"/programs/{pair.program.id}/book").get_data(as_text=True)
    first = page.split('name="occurrence"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    form = {"slot_id": str(slot.id), "occurrence": first, "topic": "Research"}
    form.update({k: v.format(first=first[:10]) for k, v in change.items()})
    before = database_snapshot(session)
    response = mentee.post(f"/programs/{pair.program.id}/book", form)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert says in page_alert(html)
    assert 'aria-invalid="true"' in html
    assert database_snapshot(session) == before


def test_a_circle_member_schedules_a_circle_meeting_for_everyone_in_it(
    session: Session,
    pair: Pair,
    as_person: Persons,
    make_user: Callable[..., User],
    enroll: Callable[..., Participant],
) -> None:
    classmate_user = make_user(pair.tenant, LEARNER)
    classmate = enroll(pair.program, classmate_user, mentee=True)
    outsider_user = make_user(pair.tenant, LEARNER)
    enroll(pair.program, outsider_user, mentee=True)
    circle = Circle(program_id=pair.program.id, name="PGY-1", facilitator_id=pair.mentor.id)
    circle.members = [
        CircleMember(participant_id=pair.mentee.id),
        CircleMember(participant_id=classmate.id),
    ]
    session.add(circle)
    session.flush()
    person = as_mentee(as_person, pair)
    listing = person.get(f"/programs/{pair.program.id}/meetings/").get_data(as_text=True)
    assert "Schedule a meeting of the peer circle PGY-1" in listing
    url = f"/programs/{pair.program.id}/circles/{circle.id}/meetings/new"
    outsider = as_person(pair.tenant, outsider_user, CourseRole.LEARNER)
    assert outsider.get(url).status_code == 404
    assert person.post(url, custom_form()).status_code == 303
    meeting = session.scalars(select(Meeting)).one()
    assert meeting.circle_id == circle.id
    assert {a.participant_id for a in meeting.attendees} == {
        pair.mentee.id,
        classmate.id,
        pair.mentor.id,
    }
    assert len(session.scalars(select(SyncIntent)).all()) == 3
