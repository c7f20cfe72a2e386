"""Meeting reminders and feedback requests, with time travel: planned for every attendee
when a meeting is booked, moved with it, cancelled with it, never sent twice, never in quiet
hours, capped, and the reminder carries the meeting's .ics (parsed as received)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import Message

import time_machine
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.followups.dispatch import BatchReport
from plugin.followups.planner import reconcile
from plugin.followups.unsubscribe import preference_for
from plugin.meetings.scheduling import (
    Actor,
    MeetingDraft,
    cancel_meeting,
    mark_meeting,
    reschedule_meeting,
    schedule_meeting,
)
from plugin.models import (
    Delivery,
    FollowUp,
    FollowUpKind,
    FollowUpState,
    Meeting,
    MeetingFormat,
    MeetingStatus,
    Notification,
    Relationship,
)
from tests.conftest import CapturedMail
from tests.followups.conftest import BASE_URL, MONDAY, Cast, followups
from tests.followups.test_dispatch import parts

StartPair = Callable[..., Relationship]
Dispatch = Callable[..., BatchReport]
REMINDER, FEEDBACK = FollowUpKind.MEETING_REMINDER, FollowUpKind.MEETING_FEEDBACK
PLANNED, SENT, CANCELLED = FollowUpState.PLANNED, FollowUpState.SENT, FollowUpState.CANCELLED
#: Thursday 16:00 UTC: 11:00 in New York, 16:00 in London; the 24 h and 1 h reminders and
#: the feedback request all fall outside both people's quiet hours.
THURSDAY = datetime(2026, 3, 5, 16, 0, tzinfo=UTC)


def draft(at: datetime, minutes: int = 60) -> MeetingDraft:
    return MeetingDraft(
        starts_at=at,
        ends_at=at + timedelta(minutes=minutes),
        time_zone="Europe/London",
        format=MeetingFormat.VIRTUAL,
        conference_url="https://meet.example.edu/abc",
        agenda="Research plan",
    )


def book(session: Session, cast: Cast, rel: Relationship, at: datetime) -> Meeting:
    meeting = schedule_meeting(
        session,
        program=cast.program,
        actor=Actor(cast.mentee, is_coordinator=False),
        draft=draft(at),
        relationship=rel,
    )
    session.commit()
    return meeting


def move(session: Session, cast: Cast, meeting: Meeting, at: datetime) -> None:
    reschedule_meeting(session, meeting, actor=Actor(cast.mentor, False), draft=draft(at))
    session.commit()


def mails(smtp: CapturedMail, prefix: str) -> list[Message]:
    return [m for m in smtp.messages if m["Subject"].startswith(prefix)]


def ics_of(message: Message) -> Calendar:
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_filename() == "meeting.ics"
    assert part.get_param("method") == "PUBLISH"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return Calendar.from_ical(payload)


def by_key(session: Session, kind: FollowUpKind) -> dict[str, FollowUp]:
    return {row.dedupe_key: row for row in followups(session, kind)}


def test_reminders_and_feedback_are_sent_once_each_when_due_with_the_ics(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    rel = start_pair()
    dispatch()  # the introductions
    meeting = book(session, cast, rel, THURSDAY)
    people = (cast.mentee.id, cast.mentor.id)
    reminders = by_key(session, REMINDER)
    assert {key: row.due_at for key, row in reminders.items()} == {
        **{f"remind:{meeting.id}:24h:{p}": THURSDAY - timedelta(hours=24) for p in people},
        **{f"remind:{meeting.id}:1h:{p}": THURSDAY - timedelta(hours=1) for p in people},
    }
    assert all(row.meeting_id == meeting.id for row in reminders.values())
    feedback = by_key(session, FEEDBACK)
    end = THURSDAY + timedelta(hours=1, minutes=30)
    assert {key: row.due_at for key, row in feedback.items()} == {
        f"feedback:{meeting.id}:{p}": end for p in people
    }

    assert dispatch().sent == 0  # nothing is due yet
    clock.move_to(THURSDAY - timedelta(hours=24, minutes=1))
    assert dispatch().sent == 0
    clock.move_to(THURSDAY - timedelta(hours=24))
    assert dispatch().sent == 2
    assert dispatch().claimed == 0  # never twice
    clock.move_to(THURSDAY - timedelta(hours=1))
    assert dispatch().sent == 2
    sent = mails(smtp_server, "Reminder:")
    assert len(sent) == 4
    mina = [m for m in sent if "mina@" in m["To"]]
    assert mina[0]["Subject"] == (
        "Reminder: Mentoring: Mina Mentee and Dr Omar Mentor, "
        "Thursday 5 March 2026, 11:00 (America/New_York)"
    )
    assert mina[0].get_content_type() == "multipart/mixed"
    body = parts(mina[0])
    assert "with Dr Omar Mentor" in body["text/plain"]
    assert f"{BASE_URL}/programs/{cast.program.id}/meetings/{meeting.id}" in body["text/plain"]
    (event,) = ics_of(mina[0]).walk("VEVENT")
    assert str(event["UID"]) == meeting.sync_key_for(cast.mentee.id)  # the calendar's copy
    assert event.decoded("SEQUENCE") == meeting.version == 1
    assert event.decoded("DTSTART") == THURSDAY
    assert str(event["SUMMARY"]) == meeting.title
    assert str(event["URL"]) == "https://meet.example.edu/abc"

    clock.move_to(end - timedelta(minutes=1))
    assert dispatch().sent == 0
    clock.move_to(end)
    assert dispatch().sent == 2
    asks = mails(smtp_server, "How did it go?")
    assert sorted(m["To"] for m in asks) == [
        "Dr Omar Mentor <omar@school.example.edu>",
        "Mina Mentee <mina@school.example.edu>",
    ]
    link = f"{BASE_URL}/programs/{cast.program.id}/meetings/{meeting.id}/feedback"
    assert link in parts(asks[0])["text/plain"]
    assert f'href="{link}"' in parts(asks[0])["text/html"]
    assert not [p for p in asks[0].walk() if p.get_content_type() == "text/calendar"]
    clock.move_to(end + timedelta(days=3))
    assert dispatch().claimed == 0
    assert len(smtp_server.messages) == 2 + 4 + 2


def test_a_moved_meeting_gets_exactly_one_reminder_per_offset_at_the_new_time(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    rel = start_pair()
    dispatch()
    meeting = book(session, cast, rel, THURSDAY)
    ids = {key: row.id for key, row in by_key(session, REMINDER).items()}
    friday = THURSDAY + timedelta(days=1)
    move(session, cast, meeting, friday)
    moved = by_key(session, REMINDER)
    assert {key: row.id for key, row in moved.items()} == ids  # the same rows, moved
    assert {row.reason for row in moved.values()} == {"rescheduled"}
    assert sorted({row.due_at for row in moved.values()}) == [
        friday - timedelta(hours=24),
        friday - timedelta(hours=1),
    ]
    clock.move_to(THURSDAY - timedelta(hours=1))  # the old times pass: nothing
    assert dispatch().sent == 0
    clock.move_to(friday - timedelta(hours=24))
    assert dispatch().sent == 2  # the 24 h reminders, for Friday
    # Moved again after the 24 h reminder went out: it is not sent a second time; the
    # 1 h one follows the meeting.
    saturday = friday + timedelta(days=1)
    move(session, cast, meeting, saturday)
    clock.move_to(friday - timedelta(hours=1))
    assert dispatch().sent == 0
    clock.move_to(saturday - timedelta(hours=1))
    assert dispatch().sent == 2
    sent = mails(smtp_server, "Reminder:")
    assert len(sent) == 4
    assert len({m["Message-ID"] for m in sent}) == 4
    assert [row.state for row in by_key(session, REMINDER).values()] == [SENT] * 4
    last = [m for m in sent if "omar@" in m["To"]][-1]
    (event,) = ics_of(last).walk("VEVENT")
    assert event.decoded("SEQUENCE") == 3  # booked, moved, moved again
    assert event.decoded("DTSTART") == saturday
    assert "Saturday 7 March 2026, 16:00 (Europe/London)" in last["Subject"]


def test_a_cancelled_meeting_gets_no_reminder_and_no_feedback_request(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    rel = start_pair()
    dispatch()
    meeting = book(session, cast, rel, THURSDAY)
    assert len(followups(session, REMINDER) + followups(session, FEEDBACK)) == 6
    cancel_meeting(session, meeting, actor=Actor(cast.mentee, False), reason="Clinic overran")
    session.commit()
    rows = followups(session, REMINDER) + followups(session, FEEDBACK)
    assert {row.state for row in rows} == {CANCELLED}
    assert {row.reason for row in rows} == {
        "obsolete: no rule asks for it any more (closed, met, done or superseded)"
    }
    for hours in (24, 1, -2):
        clock.move_to(THURSDAY - timedelta(hours=hours))
        dispatch()
    assert len(smtp_server.messages) == 2  # the introductions only


def test_a_reminder_whose_time_has_passed_is_not_created_nor_sent_late(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
) -> None:
    rel = start_pair()
    dispatch()
    soon = MONDAY + timedelta(hours=2)  # booked 2 h ahead: too late for the 24 h reminder
    meeting = book(session, cast, rel, soon)
    assert sorted(by_key(session, REMINDER)) == [
        f"remind:{meeting.id}:1h:{cast.mentee.id}",
        f"remind:{meeting.id}:1h:{cast.mentor.id}",
    ]
    # A meeting moved to within 24 h: its 24 h reminder is dropped, not sent at once.
    other = book(session, cast, rel, THURSDAY)
    move(session, cast, other, MONDAY + timedelta(hours=5))
    moved = by_key(session, REMINDER)
    day_before = [moved[f"remind:{other.id}:24h:{p}"] for p in (cast.mentee.id, cast.mentor.id)]
    assert {(row.state, row.reason) for row in day_before} == {
        (CANCELLED, "obsolete: its time had passed when it was moved")
    }
    assert moved[f"remind:{other.id}:1h:{cast.mentee.id}"].due_at == MONDAY + timedelta(hours=4)
    assert dispatch().claimed == 0
    assert len(smtp_server.messages) == 2
    # Reconciling again (the hourly sweep) does not bring the dropped ones back.
    reconcile(session, program_id=cast.program.id)
    assert {row.state for row in day_before} == {CANCELLED}


def test_a_missed_meeting_gets_no_feedback_request(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    rel = start_pair()
    dispatch()
    meeting = book(session, cast, rel, MONDAY + timedelta(hours=2))
    clock.move_to(MONDAY + timedelta(hours=3, minutes=5))  # it ended five minutes ago
    mark_meeting(session, meeting, actor=Actor(cast.mentor, False), status=MeetingStatus.MISSED)
    session.commit()
    assert {row.state for row in followups(session, FEEDBACK)} == {CANCELLED}
    clock.move_to(MONDAY + timedelta(hours=4))
    dispatch()
    assert mails(smtp_server, "How did it go?") == []


def test_reminders_wait_out_quiet_hours_and_are_dropped_once_the_meeting_began(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    rel = start_pair()
    dispatch()
    # Tuesday 08:30 UTC: 08:30 in London, 03:30 in New York. Its 1 h reminder is due at
    # 07:30 UTC, inside both people's quiet hours (21:00-08:00 local).
    early = datetime(2026, 3, 3, 8, 30, tzinfo=UTC)
    book(session, cast, rel, early)
    clock.move_to(early - timedelta(hours=1))
    report = dispatch()
    assert (report.sent, report.deferred) == (0, 2)
    clock.move_to(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))  # London's quiet hours are over
    assert dispatch().sent == 1
    assert [m["To"] for m in mails(smtp_server, "Reminder:")] == [
        "Dr Omar Mentor <omar@school.example.edu>"
    ]
    # New York's end at 13:00 UTC, after the meeting began: too late to remind anyone.
    clock.move_to(datetime(2026, 3, 3, 13, 0, tzinfo=UTC))
    assert dispatch().cancelled == 1  # (the feedback requests go out now)
    (mina,) = [r for r in followups(session, REMINDER) if r.recipient_id == cast.mentee.id]
    assert (mina.state, mina.reason) == (CANCELLED, "obsolete when it came due")
    assert len(mails(smtp_server, "Reminder:")) == 1


def test_reminders_count_towards_the_daily_cap(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    preference_for(session, cast.mentee.id).daily_cap = 1
    session.commit()
    rel = start_pair()
    dispatch()  # Mina's one message today: her introduction
    book(session, cast, rel, MONDAY + timedelta(hours=3))
    clock.move_to(MONDAY + timedelta(hours=2))
    report = dispatch()
    assert (report.sent, report.deferred) == (1, 1)
    (mina,) = [r for r in followups(session, REMINDER) if r.recipient_id == cast.mentee.id]
    assert (mina.state, mina.reason) == (PLANNED, "deferred: daily cap")
    assert [m["To"] for m in mails(smtp_server, "Reminder:")] == [
        "Dr Omar Mentor <omar@school.example.edu>"
    ]


def test_offsets_come_from_the_programs_follow_up_settings(
    session: Session, cast: Cast, start_pair: StartPair
) -> None:
    cast.program.followup_settings = {"reminder_offsets_hours": [48, 2]}
    session.commit()
    rel = start_pair()
    meeting = book(session, cast, rel, THURSDAY)
    assert sorted({key.split(":")[2] for key in by_key(session, REMINDER)}) == ["2h", "48h"]
    assert {row.meeting_id for row in followups(session, REMINDER)} == {meeting.id}
    cast.program.followup_settings = {"reminder_offsets_hours": []}  # reminders off
    session.commit()
    reconcile(session, program_id=cast.program.id)
    assert {row.state for row in followups(session, REMINDER)} == {CANCELLED}


def test_in_app_channel_delivers_to_the_notification_centre_by_preference(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    preference_for(session, cast.mentee.id).channel = "in_app"
    session.commit()
    rel = start_pair()
    meeting = book(session, cast, rel, THURSDAY)
    dispatch()
    clock.move_to(THURSDAY - timedelta(hours=24))
    dispatch()
    assert dispatch().claimed == 0
    notes = list(
        session.scalars(
            select(Notification)
            .where(Notification.recipient_id == cast.mentee.id)
            .order_by(Notification.id)
        )
    )
    assert [(n.kind, n.link) for n in notes] == [
        ("followup.introduction", f"/programs/{cast.program.id}/"),
        ("followup.meeting_reminder", f"/programs/{cast.program.id}/meetings/{meeting.id}"),
    ]
    assert notes[1].text.startswith("Reminder: Mentoring: Mina Mentee and Dr Omar Mentor")
    # E-mail for the mentor only.
    assert {m["To"] for m in smtp_server.messages} == {"Dr Omar Mentor <omar@school.example.edu>"}
    channels = {
        (d.channel, d.outcome.value)
        for d in session.scalars(select(Delivery))
        if d.followup.recipient_id == cast.mentee.id
    }
    assert channels == {("in_app", "sent")}


def test_the_programs_quiet_hours_apply_to_people_without_their_own(
    session: Session, cast: Cast, start_pair: StartPair, dispatch: Dispatch
) -> None:
    # Set on the coordinator settings page: 09:00-12:00; 10:00 in New York is inside.
    cast.program.followup_settings = {"quiet_hours": {"start": "09:00", "end": "12:00"}}
    session.commit()
    start_pair()
    report = dispatch()
    assert (report.sent, report.deferred) == (1, 1)
    (waiting,) = [r for r in followups(session) if r.state == PLANNED and r.reason]
    assert waiting.recipient_id == cast.mentee.id
    assert waiting.due_at == datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # 12:00 EST


def test_a_booked_slot_without_a_relationship_gets_reminders_in_its_own_scope(
    session: Session, cast: Cast, dispatch: Dispatch, clock: time_machine.Traveller
) -> None:
    from plugin.meetings.slots import SlotDraft, book_slot, create_slot

    slot = create_slot(
        session,
        program=cast.program,
        mentor=cast.mentor,
        draft=SlotDraft(
            weekday=3,  # Thursday, London time
            start="16:00",
            end="17:00",
            time_zone="Europe/London",
            duration_minutes=30,
            cutoff_hours=24,
            per_mentee_limit=1,
            topics=[],
            format=MeetingFormat.VIRTUAL,
            conference_url="https://meet.example.edu/slot",
            location="",
        ),
    )
    booking = book_slot(
        session, slot=slot, mentee=cast.mentee, occurrence_start=THURSDAY, topic="CV review"
    )
    session.commit()
    meeting = booking.meeting
    rows = followups(session, REMINDER)
    assert len(rows) == 4
    assert {(r.meeting_id, r.relationship_id) for r in rows} == {(meeting.id, None)}
    cancel_meeting(session, meeting, actor=Actor(cast.mentor, False), reason="Ill")
    session.commit()
    assert {r.state for r in followups(session, REMINDER) + followups(session, FEEDBACK)} == {
        CANCELLED
    }


def test_someone_who_already_gave_feedback_is_not_asked_for_it(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    from plugin.models import MeetingFeedback

    rel = start_pair()
    dispatch()
    meeting = book(session, cast, rel, THURSDAY)
    clock.move_to(THURSDAY + timedelta(minutes=70))  # the meeting has ended
    session.add(
        MeetingFeedback(
            program_id=cast.program.id,
            meeting_id=meeting.id,
            relationship_id=rel.id,
            author_id=cast.mentee.id,
            rating=5,
            useful=True,
        )
    )
    session.commit()
    clock.move_to(THURSDAY + timedelta(hours=1, minutes=30))
    report = dispatch()
    assert (report.sent, report.skipped) == (1, 1)
    asks = mails(smtp_server, "How did it go?")
    assert [m["To"] for m in asks] == ["Dr Omar Mentor <omar@school.example.edu>"]
    mine = by_key(session, FEEDBACK)[f"feedback:{meeting.id}:{cast.mentee.id}"]
    assert (mine.state, mine.reason) == (FollowUpState.SKIPPED, "already answered")


def test_someone_who_already_answered_this_periods_health_check_is_not_asked_again(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    from plugin.models import HealthCheck

    rel = start_pair()
    dispatch()  # the introductions
    (due,) = {row.due_at for row in followups(session, FollowUpKind.HEALTH_CHECK)}
    clock.move_to(due + timedelta(hours=1))
    session.add(
        HealthCheck(
            program_id=cast.program.id,
            relationship_id=rel.id,
            author_id=cast.mentor.id,
            period=1,
            score=4,
        )
    )
    session.commit()
    clock.move_to(due + timedelta(days=1))  # outside everyone's quiet hours at some point
    report = dispatch()
    assert report.skipped == 1
    rows = {
        row.recipient_id: row
        for row in followups(session, FollowUpKind.HEALTH_CHECK)
        if row.refs["period"] == 1
    }
    assert (rows[cast.mentor.id].state, rows[cast.mentor.id].reason) == (
        FollowUpState.SKIPPED,
        "already answered",
    )
    assert rows[cast.mentee.id].state == FollowUpState.SENT
