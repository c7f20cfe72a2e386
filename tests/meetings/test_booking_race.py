"""Real concurrency on PostgreSQL: two mentees book the same slot time at the same moment."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import partial

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from plugin.meetings.errors import SlotTaken
from plugin.meetings.slots import book_slot, slot_occurrences
from plugin.models import (
    Meeting,
    Participant,
    Slot,
    SlotBooking,
)
from tests.conftest import run_together
from tests.programs.conftest import seed_program


def _setup(session: Session) -> tuple[int, list[int]]:
    program, people = seed_program(session, people=3, time_zone="America/New_York")
    slot = Slot(
        program_id=program.id,
        mentor_id=people[0].id,
        weekday=1,
        local_start=time(10),
        local_end=time(11),
        time_zone="America/New_York",
        duration_minutes=30,
        cutoff_hours=0,
        per_mentee_limit=1,
    )
    session.add(slot)
    session.commit()
    return slot.id, [p.id for p in people]


@pytest.mark.postgres
def test_two_mentees_booking_the_same_time_at_once_cannot_both_get_it(
    committed_sessions: sessionmaker[Session], app: Flask
) -> None:
    maker = committed_sessions
    with maker() as setup:
        slot_id, ids = _setup(setup)
        slot = setup.get(Slot, slot_id)
        assert slot is not None
        now = datetime.now(UTC)
        start = slot_occurrences(slot, now + timedelta(days=1), now + timedelta(days=9))[0].start

    outcomes: list[str] = []

    def book(mentee_id: int) -> None:
        # Each thread needs the app for its outbox push after commit (and the encryptor).
        with app.app_context(), maker() as s:
            own_slot = s.get(Slot, slot_id)
            mentee = s.get(Participant, mentee_id)
            assert own_slot is not None
            assert mentee is not None
            try:
                book_slot(s, slot=own_slot, mentee=mentee, occurrence_start=start, topic="Career")
                s.commit()
                outcomes.append("booked")
            except SlotTaken:
                s.rollback()
                outcomes.append("taken")

    run_together(*(partial(book, mentee_id) for mentee_id in ids[1:]))
    with maker() as check:
        bookings = check.scalars(select(SlotBooking)).all()
        meetings = check.scalars(select(Meeting)).all()
    assert sorted(outcomes) == ["booked", "taken"]
    assert len(bookings) == 1
    assert len(meetings) == 1  # the loser left no meeting behind


@pytest.mark.postgres
def test_the_unique_index_alone_refuses_a_second_live_booking(
    committed_sessions: sessionmaker[Session],
) -> None:
    """Even a path that skipped the slot lock cannot write a double booking."""
    from sqlalchemy.exc import IntegrityError

    with committed_sessions() as s:
        slot_id, ids = _setup(s)
        start = datetime(2027, 1, 5, 15, 0, tzinfo=UTC)
        for mentee_id in ids[1:]:
            meeting = Meeting(
                program_id=s.get(Slot, slot_id).program_id,  # type: ignore[union-attr]
                kind="slot_booking",
                title="x",
                starts_at=start,
                ends_at=start + timedelta(minutes=30),
                time_zone="UTC",
                format="virtual",
            )
            s.add(
                SlotBooking(
                    slot_id=slot_id,
                    mentor_id=ids[0],
                    mentee_id=mentee_id,
                    occurrence_start=start,
                    meeting=meeting,
                )
            )
        with pytest.raises(IntegrityError):
            s.commit()
