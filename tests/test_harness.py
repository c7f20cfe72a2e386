"""The harness's own promises: real SMTP capture, time travel, per-test isolation."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage

import time_machine
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.models import Platform
from tests.conftest import CapturedMail


def test_smtp_server_captures_real_smtp_traffic(smtp_server: CapturedMail) -> None:
    message = EmailMessage()
    message["From"] = "preceptor@example.edu"
    message["To"] = "mentor@example.edu"
    message["Subject"] = "Your mentee booked a meeting"
    message.set_content("Tuesday 10:00")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.send_message(message)
    (received,) = smtp_server.messages
    assert received["Subject"] == "Your mentee booked a meeting"
    assert smtp_server.envelopes == [("preceptor@example.edu", ["mentor@example.edu"])]


def test_time_travel_moves_the_clock_services_read(
    time_machine: time_machine.TimeMachineFixture,
) -> None:
    time_machine.move_to(datetime(2027, 3, 14, 1, 59, tzinfo=UTC), tick=False)
    assert utcnow() == datetime(2027, 3, 14, 1, 59, tzinfo=UTC)


def test_rows_written_by_one_test_are_gone_in_the_next_a(session: Session) -> None:
    session.add(
        Platform(
            issuer="https://isolation.example",
            client_id="1",
            auth_login_url="x",
            auth_token_url="x",
            key_set_url="x",
        )
    )
    session.commit()
    assert session.scalar(select(func.count()).select_from(Platform)) == 1


def test_rows_written_by_one_test_are_gone_in_the_next_b(session: Session) -> None:
    assert session.scalar(select(func.count()).select_from(Platform)) == 0
