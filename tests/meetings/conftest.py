"""Meeting fixtures: a program with a mentee, a mentor and a coordinator in an active
relationship, and a recording calendar provider registered under a test name."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from plugin.meetings.providers import (
    ConnectionContext,
    ConnectionFailing,
    ConnectionRevoked,
    EventChange,
    EventOutcome,
    OutcomeKind,
    ProviderBatch,
    register_provider,
)
from plugin.meetings.scheduling import Actor, MeetingDraft
from plugin.models import (
    MeetingFormat,
    Participant,
    Program,
    Relationship,
    RelationshipStatus,
    Track,
    User,
)
from tests.programs.conftest import (  # the programs' fixtures, shared here
    INSTRUCTOR,
    LEARNER,
    Tenant,
    as_person,
    enroll,
    make_program,
    make_tenant,
    make_user,
    tenant,
)

__all__ = ["Pair", "RecordingProvider"]


@dataclass
class Pair:
    """A program with an active relationship and a coordinator."""

    tenant: Tenant
    program: Program
    mentee_user: User
    mentor_user: User
    coordinator_user: User
    mentee: Participant
    mentor: Participant
    coordinator: Participant
    relationship: Relationship

    def actor(self, who: Participant, *, coordinator: bool = False) -> Actor:
        return Actor(participant=who, is_coordinator=coordinator)


@pytest.fixture
def make_pair(
    session: Session,
    make_tenant: Callable[..., Tenant],
    make_user: Callable[..., User],
    make_program: Callable[..., Program],
    enroll: Callable[..., Participant],
) -> Callable[..., Pair]:
    def make(
        mentee_zone: str = "Europe/London", mentor_zone: str = "America/New_York", **kw: object
    ) -> Pair:
        home = make_tenant()
        program = make_program(home)
        mentee_user = make_user(home, LEARNER, name="Maya Mentee")
        mentor_user = make_user(home, INSTRUCTOR, name="Dr Omar Mentor")
        coordinator_user = make_user(home, INSTRUCTOR, name="Cora Coordinator")
        mentee = enroll(
            program,
            mentee_user,
            mentee=True,
            time_zone=mentee_zone,
            availability=kw.get("mentee_availability", []),
        )
        mentor = enroll(
            program,
            mentor_user,
            mentor=True,
            time_zone=mentor_zone,
            availability=kw.get("mentor_availability", []),
        )
        coordinator = enroll(program, coordinator_user, coordinator=True)
        relationship = Relationship(
            program_id=program.id,
            mentee_id=mentee.id,
            mentor_id=mentor.id,
            track=Track.RESEARCH,
            status=RelationshipStatus.ACTIVE,
        )
        session.add(relationship)
        session.flush()
        return Pair(
            home,
            program,
            mentee_user,
            mentor_user,
            coordinator_user,
            mentee,
            mentor,
            coordinator,
            relationship,
        )

    return make


@pytest.fixture
def pair(make_pair: Callable[..., Pair]) -> Pair:
    return make_pair()


def future(days: int = 7, hour: int = 15, minutes: int = 30) -> tuple[datetime, datetime]:
    """A UTC interval ``days`` from now at ``hour``:00, ``minutes`` long."""
    start = (datetime.now(UTC) + timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )
    return start, start + timedelta(minutes=minutes)


def draft(days: int = 7, hour: int = 15, **fields: object) -> MeetingDraft:
    start, end = future(days, hour)
    values: dict[str, object] = {
        "starts_at": start,
        "ends_at": end,
        "time_zone": "Europe/London",
        "format": MeetingFormat.VIRTUAL,
        "conference_url": "https://meet.example.edu/abc",
        "agenda": "Research plan",
    }
    values.update(fields)
    return MeetingDraft(**values)  # type: ignore[arg-type]


@dataclass
class RecordingProvider:
    """A provider that records every change and answers as told (never touches the DB)."""

    name: str = "recording"
    calls: list[tuple[ConnectionContext, list[EventChange]]] = field(default_factory=list)
    #: Per key, what to answer next (default: done with the key as external id).
    scripted: dict[str, list[EventOutcome]] = field(default_factory=dict)
    raise_next: list[Exception] = field(default_factory=list)
    conference_url: str = ""

    def apply_changes(
        self, connection: ConnectionContext, changes: Sequence[EventChange]
    ) -> ProviderBatch:
        self.calls.append((connection, list(changes)))
        if self.raise_next:
            raise self.raise_next.pop(0)
        outcomes = []
        for change in changes:
            queue = self.scripted.get(change.key)
            if queue:
                outcomes.append(queue.pop(0))
                continue
            outcomes.append(
                EventOutcome(
                    key=change.key,
                    kind=OutcomeKind.DONE,
                    external_id=f"ext-{change.key}",
                    etag=f"v{change.version}",
                    conference_url=self.conference_url if change.wants_conference else "",
                )
            )
        return ProviderBatch(outcomes=outcomes)

    @property
    def changes(self) -> list[EventChange]:
        return [c for _, batch in self.calls for c in batch]


@pytest.fixture
def providers(app: Flask) -> dict[str, RecordingProvider]:
    """Recording providers registered as "recording" and "ics" for this app."""
    made = {"recording": RecordingProvider("recording"), "ics": RecordingProvider("ics")}
    for name, provider in made.items():
        register_provider(name, lambda p=provider: p)  # type: ignore[misc]
    return made


__all__ += ["ConnectionFailing", "ConnectionRevoked", "draft", "future"]
