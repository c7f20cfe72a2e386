"""Scheduling services: access rules, validation, versions and sync intents in one transaction."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.meetings.errors import FormInvalid, NotAllowed, StateConflict
from plugin.meetings.scheduling import (
    Actor,
    cancel_meeting,
    mark_meeting,
    parse_meeting_form,
    reschedule_meeting,
    schedule_meeting,
    viewer_zone,
)
from plugin.models import (
    Meeting,
    MeetingStatus,
    OutboxJob,
    Participant,
    SyncIntent,
    SyncOperation,
    SyncState,
    sync_key,
)
from tests.meetings.conftest import Pair, draft, future


def queued(connection: Redis) -> list[str]:
    return Queue("high", connection=connection, serializer=JSONSerializer).get_job_ids()


def intents(session: Session, meeting: Meeting) -> list[SyncIntent]:
    query = (
        select(SyncIntent)
        .where(SyncIntent.meeting_id == meeting.id)
        .order_by(SyncIntent.id)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(query))


def test_scheduling_writes_version_one_and_one_intent_per_attendee_queued_after_commit(
    session: Session, pair: Pair, redis_conn: Redis
) -> None:
    meeting = schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentee),
        draft=draft(),
        relationship=pair.relationship,
    )
    assert meeting.version == 1
    assert {a.participant_id for a in meeting.attendees} == {pair.mentee.id, pair.mentor.id}
    written = intents(session, meeting)
    assert [(i.operation, i.meeting_version, i.state) for i in written] == [
        (SyncOperation.CREATE, 1, SyncState.PENDING)
    ] * 2
    # Nobody connected a calendar: the intents wait for the e-mail invitation + feed path.
    assert {i.provider for i in written} == {"ics"}
    assert queued(redis_conn) == []  # nothing leaves before the change is durable
    session.commit()
    jobs = session.scalars(select(OutboxJob)).all()
    assert sorted(j.args[0] for j in jobs) == sorted([pair.mentee.id, pair.mentor.id])
    assert {j.func for j in jobs} == {"workers.jobs.sync_calendar_intents"}
    assert sorted(queued(redis_conn)) == sorted(j.rq_job_id for j in jobs)


def test_a_rolled_back_schedule_leaves_no_meeting_no_intent_and_queues_nothing(
    session: Session, pair: Pair, redis_conn: Redis
) -> None:
    schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentor),
        draft=draft(),
        relationship=pair.relationship,
    )
    session.rollback()
    session.commit()
    assert session.scalars(select(Meeting)).all() == []
    assert session.scalars(select(SyncIntent)).all() == []
    assert session.scalars(select(OutboxJob)).all() == []
    assert queued(redis_conn) == []


def test_reschedule_bumps_the_version_and_supersedes_pending_intents(
    session: Session, pair: Pair
) -> None:
    meeting = schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentee),
        draft=draft(),
        relationship=pair.relationship,
    )
    reschedule_meeting(session, meeting, actor=pair.actor(pair.mentor), draft=draft(days=8))
    assert meeting.version == 2
    states = [(i.meeting_version, i.operation, i.state) for i in intents(session, meeting)]
    assert sorted(states) == sorted(
        [(1, SyncOperation.CREATE, SyncState.SUPERSEDED)] * 2
        + [(2, SyncOperation.UPDATE, SyncState.PENDING)] * 2
    )


def test_cancel_needs_a_reason_and_then_writes_cancel_intents(session: Session, pair: Pair) -> None:
    meeting = schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentee),
        draft=draft(),
        relationship=pair.relationship,
    )
    with pytest.raises(FormInvalid) as refused:
        cancel_meeting(session, meeting, actor=pair.actor(pair.mentee), reason="  ")
    assert "reason" in refused.value.errors
    assert (meeting.status, meeting.version) == (MeetingStatus.SCHEDULED, 1)
    cancel_meeting(session, meeting, actor=pair.actor(pair.mentee), reason="Clinic overran")
    assert (meeting.status, meeting.version) == (MeetingStatus.CANCELLED, 2)
    pending = [i for i in intents(session, meeting) if i.state == SyncState.PENDING]
    assert {(i.operation, i.meeting_version) for i in pending} == {(SyncOperation.CANCEL, 2)}
    with pytest.raises(StateConflict):
        cancel_meeting(session, meeting, actor=pair.actor(pair.mentee), reason="again")
    with pytest.raises(StateConflict):
        reschedule_meeting(session, meeting, actor=pair.actor(pair.mentee), draft=draft(days=9))


def test_held_or_missed_is_recorded_only_after_the_start(session: Session, pair: Pair) -> None:
    meeting = schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentee),
        draft=draft(),
        relationship=pair.relationship,
    )
    with pytest.raises(StateConflict):
        mark_meeting(session, meeting, actor=pair.actor(pair.mentor), status=MeetingStatus.HELD)
    after = meeting.starts_at + timedelta(hours=1)
    mark_meeting(
        session, meeting, actor=pair.actor(pair.mentor), status=MeetingStatus.HELD, now=after
    )
    assert meeting.status == MeetingStatus.HELD
    assert meeting.version == 2
    assert all(a.attended for a in meeting.attendees)
    mark_meeting(
        session, meeting, actor=pair.actor(pair.mentor), status=MeetingStatus.MISSED, now=after
    )
    assert (meeting.status, meeting.version) == (MeetingStatus.MISSED, 3)


def test_only_the_pair_or_a_coordinator_may_schedule_or_change(
    session: Session, pair: Pair, enroll: Callable[..., Participant]
) -> None:
    other = enroll(pair.program, None, mentee=True)
    with pytest.raises(NotAllowed):
        schedule_meeting(
            session,
            program=pair.program,
            actor=Actor(other, is_coordinator=False),
            draft=draft(),
            relationship=pair.relationship,
        )
    meeting = schedule_meeting(
        session,
        program=pair.program,
        actor=Actor(None, is_coordinator=True),
        draft=draft(),
        relationship=pair.relationship,
    )
    assert meeting.organizer_id is None
    with pytest.raises(NotAllowed):
        cancel_meeting(session, meeting, actor=Actor(other, is_coordinator=False), reason="x")
    assert meeting.version == 1


def test_a_meeting_overlapping_one_of_the_peoples_meetings_is_refused(
    session: Session, pair: Pair
) -> None:
    schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentee),
        draft=draft(hour=15),
        relationship=pair.relationship,
    )
    start, _ = future(hour=15)
    overlapping = draft(hour=15, starts_at=start + timedelta(minutes=15))
    with pytest.raises(FormInvalid) as refused:
        schedule_meeting(
            session,
            program=pair.program,
            actor=pair.actor(pair.mentee),
            draft=overlapping,
            relationship=pair.relationship,
        )
    assert refused.value.errors == {
        "start": "You already have a meeting at that time; choose another."
    }
    assert len(session.scalars(select(Meeting)).all()) == 1


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"end": "09:30", "start": "10:00"}, "end", "End the meeting after it starts."),
        ({"date": "2026-11-30"}, "start", "Choose a time in the future."),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "Choose a time zone"),
        ({"conference_url": "http://meet.example"}, "conference_url", "https://"),
        ({"format": "in_person", "location": ""}, "location", "Say where you will meet"),
        ({"date": "tomorrow"}, "date", "YYYY-MM-DD"),
        ({"format": "carrier-pigeon"}, "format", "virtual or in person"),
    ],
)
def test_bad_meeting_input_is_refused_at_its_field(
    fields: dict[str, str], field: str, message: str
) -> None:
    form = {
        "suggestion": "custom",
        "date": "2026-12-03",
        "start": "10:00",
        "end": "10:30",
        "time_zone": "Europe/London",
        "format": "virtual",
        "conference_url": "https://meet.example.edu/x",
    }
    form.update(fields)
    with pytest.raises(FormInvalid) as refused:
        parse_meeting_form(form, default_zone="UTC", now=NOW)
    assert message in refused.value.errors[field]


def test_a_custom_time_is_read_in_its_zone_and_a_suggestion_as_given() -> None:
    form = {
        "date": "2026-12-03",
        "start": "10:00",
        "end": "10:30",
        "time_zone": "America/New_York",
        "format": "virtual",
    }
    parsed = parse_meeting_form(form, default_zone="UTC", now=NOW)
    assert parsed.starts_at == datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    suggestion = {
        "suggestion": "2026-12-04T16:00:00+00:00/2026-12-04T16:30:00+00:00",
        "time_zone": "Europe/London",
        "format": "in_person",
        "location": "Library room 2",
    }
    parsed = parse_meeting_form(suggestion, default_zone="UTC", now=NOW)
    assert (parsed.starts_at, parsed.location) == (
        datetime(2026, 12, 4, 16, 0, tzinfo=UTC),
        "Library room 2",
    )


def test_the_sync_key_is_deterministic_base32hex_and_distinct_per_attendee(
    session: Session, pair: Pair
) -> None:
    meeting = schedule_meeting(
        session,
        program=pair.program,
        actor=pair.actor(pair.mentee),
        draft=draft(),
        relationship=pair.relationship,
    )
    keys = {meeting.sync_key_for(pair.mentee.id), meeting.sync_key_for(pair.mentor.id)}
    assert len(keys) == 2
    for key in keys:
        # Google event ids: base32hex (a-v, 0-9), 5 to 1024 characters.
        assert re.fullmatch(r"[0-9a-v]{5,1024}", key)
    assert meeting.sync_key_for(pair.mentee.id) == sync_key(meeting.uid_seed, pair.mentee.id)
    assert intents(session, meeting)[0].sync_key in keys


def test_times_are_shown_in_the_viewers_own_zone(pair: Pair) -> None:
    assert viewer_zone(pair.mentee, pair.mentee_user) == "Europe/London"
    assert viewer_zone(pair.mentor, pair.mentor_user) == "America/New_York"
    pair.coordinator_user.time_zone = "Asia/Tokyo"
    assert viewer_zone(pair.coordinator, pair.coordinator_user) == "Asia/Tokyo"
    assert viewer_zone(None, None) == "UTC"
