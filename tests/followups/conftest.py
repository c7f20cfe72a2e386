"""Follow-up fixtures: a program with a coordinator and a pair in two time zones, and the
dispatcher wired to the real SMTP server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin import create_app
from plugin.db import get_db
from plugin.followups.channels import EmailChannel
from plugin.followups.dispatch import BatchReport, DispatchConfig, send_due_batch
from plugin.followups.rules import RuleSet
from plugin.migrate import upgrade
from plugin.models import (
    FollowUp,
    FollowUpKind,
    FollowUpState,
    Participant,
    Program,
    Relationship,
    RelationshipOrigin,
    Track,
)
from plugin.programs.relationships import propose_relationship
from tests.conftest import TEST_SECRET_KEY, CapturedMail, app_settings, close_app_http
from tests.programs import conftest as programs
from tests.programs.conftest import INSTRUCTOR, LEARNER, Tenant

# The programs tests' factories, shared (pytest finds fixtures by module attribute).
make_tenant = programs.make_tenant
tenant = programs.tenant
make_user = programs.make_user
make_program = programs.make_program
enroll = programs.enroll

#: A Monday afternoon: 10:00 in New York, 15:00 in London (nobody's quiet hours).
MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
MAIL_FROM = "Preceptor <mentoring@school.example.edu>"
BASE_URL = "http://preceptor.test"


@dataclass
class Cast:
    """A program and its people."""

    program: Program
    coordinator: Participant
    mentee: Participant
    mentor: Participant


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """Time stands at MONDAY until the test moves it (``clock.move_to(...)``)."""
    with time_machine.travel(MONDAY, tick=False) as traveller:
        yield traveller


@pytest.fixture
def cast(
    clock: time_machine.Traveller,
    tenant: Tenant,
    make_program: Callable[..., Program],
    make_user: Callable[..., Any],
    enroll: Callable[..., Participant],
) -> Cast:
    program = make_program(tenant)
    coordinator = enroll(
        program,
        make_user(tenant, INSTRUCTOR, name="Casey Coordinator", email="casey@school.example.edu"),
        coordinator=True,
        time_zone="America/Chicago",
    )
    mentee = enroll(
        program,
        make_user(tenant, LEARNER, name="Mina Mentee", email="mina@school.example.edu"),
        mentee=True,
        time_zone="America/New_York",
    )
    mentor = enroll(
        program,
        make_user(tenant, INSTRUCTOR, name="Dr Omar Mentor", email="omar@school.example.edu"),
        mentor=True,
        time_zone="Europe/London",
        bio="Cardiologist; loves teaching echo.",
    )
    return Cast(program=program, coordinator=coordinator, mentee=mentee, mentor=mentor)


@pytest.fixture
def start_pair(session: Session, cast: Cast) -> Callable[..., Relationship]:
    def start(activate: bool = True) -> Relationship:
        rel = propose_relationship(
            session,
            program=cast.program,
            mentee=cast.mentee,
            mentor=cast.mentor,
            track=Track.RESEARCH,
            origin=RelationshipOrigin.COORDINATOR,
            actor=cast.coordinator,
            activate=activate,
        )
        session.commit()
        return rel

    return start


def followups(session: Session, kind: FollowUpKind | None = None) -> list[FollowUp]:
    query = select(FollowUp).order_by(FollowUp.id).execution_options(populate_existing=True)
    if kind is not None:
        query = query.where(FollowUp.kind == kind)
    return list(session.scalars(query))


def states(rows: list[FollowUp]) -> list[FollowUpState]:
    return [row.state for row in rows]


def config(**overrides: Any) -> DispatchConfig:
    values: dict[str, Any] = {
        "base_url": BASE_URL,
        "mail_from": MAIL_FROM,
        "secret_key": TEST_SECRET_KEY,
    }
    values.update(overrides)
    return DispatchConfig(**values)


@pytest.fixture
def dispatch(session: Session, smtp_server: CapturedMail) -> Callable[..., BatchReport]:
    """Run batches against the real SMTP server until nothing due is left to claim."""

    def run(rules: RuleSet | None = None, **overrides: Any) -> BatchReport:
        channel = EmailChannel(smtp_server.url, MAIL_FROM)
        total = BatchReport()
        for _ in range(50):  # bounded: a bug must fail the test, not hang it
            report = send_due_batch(session, channel, config(**overrides), rules=rules)
            for name, value in vars(report).items():
                setattr(total, name, getattr(total, name) + value)
            if report.claimed == 0:
                break
        return total

    return run


@pytest.fixture
def live_app(
    fresh_database_url: str, redis_url: str, redis_conn: Redis, tmp_path: Path
) -> Iterator[Flask]:
    """An app on its own migrated database with real commits (threads and processes)."""
    app = create_app(
        app_settings(
            database_url=fresh_database_url,
            redis_url=redis_url,
            instance_path=tmp_path / "instance",
        )
    )
    upgrade(get_db(app).engine)
    with app.app_context():
        yield app
    get_db(app).dispose()
    close_app_http(app)


def book_meeting(session: Session, rel: Relationship, at: datetime) -> None:
    """Put a meeting of the pair in the diary at ``at`` (so "no meeting" nudges wait)."""
    from plugin.followups.planner import reconcile
    from tests.programs.conftest import add_meeting

    add_meeting(session, rel, at)
    reconcile(session, relationship_id=rel.id)
