"""Insights fixtures: a program with a coordinator and active pairs, meetings with
attendees, and a clock standing still until a test moves it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy.orm import Session

from plugin.models import (
    Meeting,
    MeetingAttendee,
    MeetingFormat,
    MeetingKind,
    MeetingStatus,
    Participant,
    Program,
    Relationship,
    RelationshipStatus,
    Track,
    User,
)
from tests.programs import conftest as programs
from tests.programs.conftest import INSTRUCTOR, LEARNER, Tenant

# The programs tests' factories, shared (pytest finds fixtures by module attribute).
make_tenant = programs.make_tenant
tenant = programs.tenant
make_user = programs.make_user
make_program = programs.make_program
enroll = programs.enroll
as_person = programs.as_person

#: A Tuesday morning, UTC: where every test's clock starts.
T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """Time stands at T0 until the test moves it (``clock.move_to(...)``)."""
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@dataclass
class World:
    """A program with a coordinator (an instructor) and a way to add active pairs."""

    tenant: Tenant
    program: Program
    coordinator_user: User
    coordinator: Participant
    add_pair: Callable[..., Relationship]
    add_meeting: Callable[..., Meeting]

    def user_of(self, participant: Participant) -> User:
        assert participant.user is not None
        return participant.user


@pytest.fixture
def world(
    clock: time_machine.Traveller,
    session: Session,
    tenant: Tenant,
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> World:
    program = make_program(tenant, title="Residency mentoring")
    coordinator_user = make_user(tenant, INSTRUCTOR, name="Cora Coordinator")
    coordinator = enroll(program, coordinator_user, coordinator=True)

    def add_pair(
        started: datetime = T0 - timedelta(days=5),
        status: RelationshipStatus = RelationshipStatus.ACTIVE,
        mentee_name: str = "",
        mentor_name: str = "",
    ) -> Relationship:
        mentee = enroll(program, make_user(tenant, LEARNER, name=mentee_name), mentee=True)
        mentor = enroll(program, make_user(tenant, INSTRUCTOR, name=mentor_name), mentor=True)
        rel = Relationship(
            program_id=program.id,
            mentee_id=mentee.id,
            mentor_id=mentor.id,
            track=Track.RESEARCH,
            status=status,
            started_at=started,
            created_at=started,
        )
        session.add(rel)
        session.flush()
        return rel

    def add_meeting(
        rel: Relationship,
        start: datetime,
        status: MeetingStatus = MeetingStatus.HELD,
        *attendees: Participant,
    ) -> Meeting:
        meeting = Meeting(
            program_id=program.id,
            kind=MeetingKind.RELATIONSHIP,
            relationship_id=rel.id,
            title="Research check-in",
            starts_at=start,
            ends_at=start + timedelta(minutes=30),
            time_zone="UTC",
            format=MeetingFormat.VIRTUAL,
            status=status,
        )
        people = attendees or (rel.mentee, rel.mentor)
        meeting.attendees = [MeetingAttendee(participant_id=p.id) for p in people]
        session.add(meeting)
        session.flush()
        return meeting

    return World(tenant, program, coordinator_user, coordinator, add_pair, add_meeting)


# The dashboard's hand-counted program (fixture ``scenario``) and its helpers.
from tests.insights.scenario import NOW, Scenario, add_meeting, at, scenario  # noqa: E402

__all__ = [
    "INSTRUCTOR",
    "LEARNER",
    "NOW",
    "T0",
    "Scenario",
    "Tenant",
    "World",
    "add_meeting",
    "at",
    "scenario",
]
