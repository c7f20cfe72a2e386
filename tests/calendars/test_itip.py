"""The ``ics`` provider on its own: what it sends, and how the relay's answers map to the
provider-neutral errors the sync engine decides by."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest

from plugin.calendars import (
    Attendee,
    EventRef,
    EventSpec,
    Operation,
    OperationKind,
    ProviderError,
    TransientError,
    open_provider,
)
from plugin.calendars.itip import ItipProvider
from plugin.calendars.settings import CalendarSettings
from plugin.calendars.sync import SyncStatus, WorkItem, sync_connection
from tests.conftest import CapturedMail, _free_port

START = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)


def spec(version: int = 1) -> EventSpec:
    return EventSpec(
        key="preceptor-7-3-0123456789abcdef",
        version=version,
        summary="Mentoring: research plan",
        start=START,
        end=START + timedelta(minutes=30),
        zone="America/New_York",
        attendees=(
            Attendee("mentee@example.edu", "Maya Mentee"),
            Attendee("mentor@example.edu", "Dr Omar Mentor", organizer=True),
        ),
        owner_email="mentee@example.edu",
    )


def provider(url: str) -> ItipProvider:
    opened = open_provider(
        "ics", {}, settings=CalendarSettings(smtp_url=url, mail_from="p@school.example.edu")
    )
    assert isinstance(opened, ItipProvider)
    return opened


class RefusingRelay:
    """A real SMTP server that answers every message with a fixed code."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return self.answer


@pytest.fixture
def refusing() -> Iterator[tuple[RefusingRelay, str]]:
    from aiosmtpd.controller import Controller

    relay, port = RefusingRelay("550 5.1.1 mailbox unavailable"), _free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    yield relay, f"smtp://127.0.0.1:{port}"
    controller.stop()


def test_a_cancel_for_someone_never_invited_sends_nothing(smtp_server: CapturedMail) -> None:
    itip = provider(smtp_server.url)
    (outcome,) = itip.run_batch([Operation.cancel(EventRef(spec().key), spec(2))])
    assert outcome.ok
    assert outcome.result is None
    assert smtp_server.messages == []
    (sent,) = itip.run_batch([Operation.create(spec())])
    assert sent.result is not None
    assert (sent.result.external_id, sent.result.version) == (spec().key, 1)
    assert len(smtp_server.messages) == 1
    itip.close()


def test_a_refused_recipient_fails_for_good_and_an_absent_relay_is_retried(
    refusing: tuple[RefusingRelay, str],
) -> None:
    relay, url = refusing
    item = WorkItem(1, OperationKind.CREATE, 1, spec=spec())
    report = sync_connection(provider(url), [item], connection_id="ics")
    (outcome,) = report.outcomes
    assert outcome.status is SyncStatus.FAILED
    assert isinstance(outcome.error, ProviderError)
    assert "550" in outcome.reason
    assert len(relay.messages) == 1

    nobody = f"smtp://127.0.0.1:{_free_port()}"  # nothing listens there
    report = sync_connection(provider(nobody), [item], connection_id="ics")
    (outcome,) = report.outcomes
    assert outcome.status is SyncStatus.RETRY
    assert isinstance(outcome.error, TransientError)
    assert outcome.retry_at is not None
