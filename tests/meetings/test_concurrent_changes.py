"""Real concurrency on PostgreSQL: two people change one meeting at the same moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from plugin.meetings.scheduling import Actor, MeetingDraft, reschedule_meeting, schedule_meeting
from plugin.models import (
    Meeting,
    MeetingFormat,
    Participant,
    Relationship,
    RelationshipStatus,
    SyncIntent,
    SyncState,
    Track,
)
from tests.conftest import run_together
from tests.programs.conftest import seed_program


def _draft(days: int) -> MeetingDraft:
    start = datetime(2027, 2, 1, 15, tzinfo=UTC) + timedelta(days=days)
    return MeetingDraft(
        starts_at=start,
        ends_at=start + timedelta(minutes=30),
        time_zone="Europe/London",
        format=MeetingFormat.VIRTUAL,
    )


@pytest.mark.postgres
def test_two_concurrent_reschedules_both_count_and_leave_one_pending_intent_per_person(
    committed_sessions: sessionmaker[Session], app: Flask
) -> None:
    maker = committed_sessions
    with app.app_context(), maker() as setup:
        program, (mentor, mentee) = seed_program(setup, people=2)
        people = [mentee, mentor]
        relationship = Relationship(
            program_id=program.id,
            mentee_id=people[0].id,
            mentor_id=people[1].id,
            track=Track.RESEARCH,
            status=RelationshipStatus.ACTIVE,
        )
        setup.add(relationship)
        setup.flush()
        meeting = schedule_meeting(
            setup,
            program=program,
            actor=Actor(people[0], is_coordinator=False),
            draft=_draft(0),
            relationship=relationship,
        )
        setup.commit()
        meeting_id, ids = meeting.id, [p.id for p in people]

    errors: list[BaseException] = []

    def reschedule(index: int) -> None:
        with app.app_context(), maker() as s:
            own = s.get(Meeting, meeting_id)
            actor = s.get(Participant, ids[index])
            assert own is not None
            assert actor is not None
            try:
                reschedule_meeting(
                    s, own, actor=Actor(actor, is_coordinator=False), draft=_draft(index + 1)
                )
                s.commit()
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                s.rollback()
                errors.append(exc)

    run_together(partial(reschedule, 0), partial(reschedule, 1))
    with maker() as check:
        final = check.get(Meeting, meeting_id)
        assert final is not None
        pending = check.scalars(
            select(SyncIntent).where(SyncIntent.state == SyncState.PENDING)
        ).all()
        version = final.version
    assert errors == []
    assert version == 3  # neither change was lost
    assert sorted((i.attendee_id, i.meeting_version) for i in pending) == sorted(
        (person, 3) for person in ids
    )
