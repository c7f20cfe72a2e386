"""Dispatcher and e-mail channel, against a real SMTP server: sent once, never in quiet
hours, capped, preferences and one-click unsubscribe honoured."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.followups.channels import EmailChannel
from plugin.followups.dispatch import (
    BatchReport,
    count_due,
    dispatch_tick,
    send_due_batch,
)
from plugin.followups.planner import ReconcileReport, reconcile
from plugin.followups.unsubscribe import preference_for
from plugin.models import (
    Delivery,
    DeliveryOutcome,
    FollowUpKind,
    FollowUpState,
    Relationship,
)
from tests.conftest import CapturedMail
from tests.followups.conftest import (
    MAIL_FROM,
    MONDAY,
    Cast,
    book_meeting,
    config,
    followups,
    states,
)

StartPair = Callable[..., Relationship]
Dispatch = Callable[..., BatchReport]
SENT = FollowUpState.SENT


def parts(message: Message) -> dict[str, str]:
    found = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found


def test_introductions_are_sent_once_with_both_parts_and_unsubscribe_headers(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
) -> None:
    start_pair()
    report = dispatch()
    assert report.sent == 2
    assert dispatch().claimed == 0  # nothing is ever sent twice
    assert len(smtp_server.messages) == 2
    by_to = {m["To"]: m for m in smtp_server.messages}
    mina = by_to["Mina Mentee <mina@school.example.edu>"]
    assert mina["Subject"] == "Meet your mentor: Dr Omar Mentor"
    assert mina["From"] == MAIL_FROM
    assert mina["Message-ID"].startswith("<followup-")
    assert mina["Message-ID"].endswith("@school.example.edu>")
    assert mina["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mina["List-Unsubscribe"].startswith("<http://preceptor.test/unsubscribe/")
    assert mina["Auto-Submitted"] == "auto-generated"
    assert mina.get_content_type() == "multipart/alternative"
    body = parts(mina)
    assert set(body) == {"text/plain", "text/html"}
    assert "Cardiologist; loves teaching echo." in body["text/plain"]
    assert "<strong>Dr Omar Mentor</strong>" in body["text/html"]
    assert "http://preceptor.test/programs/" in body["text/plain"]
    rows = followups(session, FollowUpKind.INTRODUCTION)
    assert states(rows) == [SENT, SENT]
    assert all(row.sent_at == MONDAY and row.attempts == 1 for row in rows)
    deliveries = list(session.scalars(select(Delivery)))
    assert {d.outcome for d in deliveries} == {DeliveryOutcome.SENT}
    assert {d.message_id for d in deliveries} == {m["Message-ID"] for m in smtp_server.messages}


def test_what_is_not_due_is_not_claimed(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    start_pair()
    dispatch()
    assert count_due(session, MONDAY, 1000) == 0
    health = followups(session, FollowUpKind.HEALTH_CHECK)
    assert health
    assert all(row.state == FollowUpState.PLANNED for row in health)
    assert len(smtp_server.messages) == 2
    clock.move_to(MONDAY + timedelta(days=60))
    # Day 60 also has the pair's "no meeting yet" nudges due (they never met), so more
    # than the two health checks go out; what matters is that now they are sent.
    assert dispatch().sent >= 2
    assert states(followups(session, FollowUpKind.HEALTH_CHECK)) == [SENT, SENT]


def test_quiet_hours_defer_to_their_end_in_each_persons_zone(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    # 06:30 UTC: 01:30 in New York and 06:30 in London, both inside 21:00-08:00.
    clock.move_to(datetime(2026, 3, 2, 6, 30, tzinfo=UTC))
    start_pair()
    report = dispatch()
    assert (report.sent, report.deferred) == (0, 2)
    assert smtp_server.messages == []
    rows = {row.recipient_id: row for row in followups(session, FollowUpKind.INTRODUCTION)}
    assert rows[cast.mentor.id].due_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 08:00 GMT
    assert rows[cast.mentee.id].due_at == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 08:00 EST
    assert all(row.reason == "deferred: quiet hours" for row in rows.values())
    # The planner does not pull a deferred row back into the quiet hours.
    assert reconcile(session, relationship_id=rows[cast.mentor.id].relationship_id or 0) == (
        ReconcileReport(unchanged=len(followups(session)))
    )
    assert followups(session, FollowUpKind.INTRODUCTION)[0].due_at in {
        row.due_at for row in rows.values()
    }
    clock.move_to(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    assert dispatch().sent == 1
    assert [m["To"] for m in smtp_server.messages] == ["Dr Omar Mentor <omar@school.example.edu>"]
    clock.move_to(datetime(2026, 3, 2, 13, 0, tzinfo=UTC))
    assert dispatch().sent == 1
    assert len(smtp_server.messages) == 2


def test_a_persons_own_quiet_hours_are_honoured(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
) -> None:
    preference = preference_for(session, cast.mentor.id)
    preference.quiet_start, preference.quiet_end = "12:00", "18:00"  # 15:00 London: quiet
    session.commit()
    start_pair()
    assert dispatch().sent == 1
    (mentor_intro,) = [
        row
        for row in followups(session)
        if row.recipient_id == cast.mentor.id and row.kind == FollowUpKind.INTRODUCTION
    ]
    assert mentor_intro.due_at == datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def test_daily_cap_defers_the_rest_to_the_next_local_day(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    preference = preference_for(session, cast.mentee.id)
    preference.daily_cap = 1
    session.commit()
    rel = start_pair()
    book_meeting(session, rel, MONDAY + timedelta(days=59))  # no "not met" nudges due yet
    clock.move_to(MONDAY + timedelta(days=60))  # health check due; intro not sent yet
    reconcile(session, relationship_id=rel.id)
    report = dispatch()
    mina = [m for m in smtp_server.messages if "mina@" in m["To"]]
    assert len(mina) == 1
    assert report.deferred >= 1
    waiting = [
        row
        for row in followups(session)
        if row.recipient_id == cast.mentee.id
        and row.state == FollowUpState.PLANNED
        and row.reason == "deferred: daily cap"
    ]
    # Midnight in New York (EDT after 8 March) is 04:00 UTC.
    day = (MONDAY + timedelta(days=61)).date()
    assert [row.due_at for row in waiting] == [
        datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=4)
    ]
    clock.move_to(waiting[0].due_at + timedelta(hours=9))  # past midnight and quiet hours
    dispatch()
    assert len([m for m in smtp_server.messages if "mina@" in m["To"]]) == 2


def test_muted_kinds_and_unsubscribed_people_are_skipped_with_a_reason(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
) -> None:
    preference_for(session, cast.mentee.id).muted_kinds = [FollowUpKind.INTRODUCTION.value]
    preference_for(session, cast.mentor.id).unsubscribed_at = MONDAY
    session.commit()
    start_pair()
    report = dispatch()
    assert (report.sent, report.skipped) == (0, 2)
    assert smtp_server.messages == []
    reasons = {
        row.recipient_id: row.reason
        for row in followups(session)
        if row.kind == FollowUpKind.INTRODUCTION
    }
    assert reasons == {cast.mentee.id: "muted by the recipient", cast.mentor.id: "unsubscribed"}
    skipped = list(session.scalars(select(Delivery)))
    assert {d.outcome for d in skipped} == {DeliveryOutcome.SKIPPED}


def test_the_unsubscribe_link_works_without_a_login(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    client: FlaskClient,
) -> None:
    start_pair()
    dispatch()
    (mina,) = [m for m in smtp_server.messages if "mina@" in m["To"]]
    url = mina["List-Unsubscribe"].strip("<>")
    assert url in parts(mina)["text/plain"]
    path = urlsplit(url).path
    page = client.get(path)  # a link scanner's GET must not unsubscribe
    assert page.status_code == 200
    assert b'<button type="submit">Unsubscribe</button>' in page.data
    assert preference_for(session, cast.mentee.id).unsubscribed_at is None
    # RFC 8058: the mail provider POSTs this body, with no cookies and no session.
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert b"You are unsubscribed" in done.data
    session.expire_all()
    assert preference_for(session, cast.mentee.id).unsubscribed_at is not None
    assert client.post(path[:-3] + "abc").status_code == 404  # altered token
    assert client.get("/unsubscribe/not-a-token").status_code == 404


def test_a_refusing_relay_is_retried_with_backoff_then_given_up(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    clock: time_machine.Traveller,
) -> None:
    start_pair()
    dead_relay = EmailChannel("smtp://127.0.0.1:1", MAIL_FROM)  # nothing listens there
    report = send_due_batch(session, dead_relay, config())
    assert report.retrying == 2
    row = followups(session, FollowUpKind.INTRODUCTION)[0]
    assert row.state == FollowUpState.PLANNED
    assert row.reason.startswith("retrying: cannot reach the mail relay")
    assert row.due_at == MONDAY + timedelta(minutes=5)
    for _ in range(10):
        clock.move_to(datetime(2026, 3, 3, 15, 0, tzinfo=UTC) + timedelta(days=_))
        send_due_batch(session, dead_relay, config())
    intros = followups(session, FollowUpKind.INTRODUCTION)
    assert states(intros) == [FollowUpState.FAILED] * 2
    assert all(row.attempts == 5 for row in intros)
    failed = session.scalars(select(Delivery).where(Delivery.followup_id == intros[0].id)).all()
    assert [d.outcome for d in failed] == [DeliveryOutcome.FAILED] * 5
    assert len({d.message_id for d in failed}) == 1  # every attempt is the same message


def test_cron_tick_queues_one_job_per_batch_and_the_worker_sends(
    app: Flask,
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    smtp_server: CapturedMail,
    redis_conn: Redis,
    drain_jobs: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = app.extensions["preceptor.settings"]
    monkeypatch.setitem(
        app.extensions,
        "preceptor.settings",
        settings.model_copy(update={"smtp_url": SecretStr(smtp_server.url)}),
    )
    assert dispatch_tick(session, redis_conn).batches == 0  # a quiet tick queues nothing
    start_pair()
    tick = dispatch_tick(session, redis_conn)
    assert (tick.due, tick.batches) == (2, 1)
    assert dispatch_tick(session, redis_conn).batches == 1  # same minute: the same job id
    queue = Queue("default", connection=redis_conn, serializer=JSONSerializer)
    assert len(queue.get_job_ids()) == 1
    assert drain_jobs() == 1
    assert len(smtp_server.messages) == 2


def test_development_outbox_lists_deliveries_only_in_development(
    make_app: Callable[..., Flask],
    client: FlaskClient,
    database_url: str,
    redis_url: str,
) -> None:
    assert client.get("/dev/mail").status_code == 404  # PRECEPTOR_ENV=test
    dev = make_app(env="development", database_url=database_url, redis_url=redis_url)
    page = dev.test_client().get("/dev/mail")
    assert page.status_code == 200
    assert b"Development mail outbox" in page.data


def test_outbox_only_channel_records_without_a_relay(
    session: Session, cast: Cast, start_pair: StartPair, app: Flask
) -> None:
    from plugin.followups.dispatch import channel_from_settings

    start_pair()
    channel = channel_from_settings(app.extensions["preceptor.settings"])
    assert channel.outbox_only
    assert send_due_batch(session, channel, config()).sent == 2
    subjects: Any = session.scalars(select(Delivery.subject).order_by(Delivery.id)).all()
    assert "Meet your mentor: Dr Omar Mentor" in subjects


def test_a_change_the_planner_missed_is_caught_just_before_sending(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
) -> None:
    from plugin.models import RelationshipStatus

    rel = start_pair()
    rel.status = RelationshipStatus.CLOSED  # changed without the service (no planner hook)
    session.commit()
    report = dispatch()
    assert (report.sent, report.cancelled) == (0, 2)
    assert smtp_server.messages == []
    intros = followups(session, FollowUpKind.INTRODUCTION)
    assert states(intros) == [FollowUpState.CANCELLED] * 2
    assert {row.reason for row in intros} == {"obsolete when it came due"}


def test_nudges_and_the_escalation_go_out_in_order_and_then_stop(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    from plugin.followups.rules import RuleSet

    rules = RuleSet(last_meeting_at=lambda _session, _rel: None)
    rel = start_pair()
    reconcile(session, relationship_id=rel.id, rules=rules)
    dispatch(rules=rules)  # the introductions
    for day in range(1, 60):
        clock.move_to(MONDAY + timedelta(days=day))
        dispatch(rules=rules)
    subjects = [m["Subject"] for m in smtp_server.messages]
    assert subjects.count("Time to meet Dr Omar Mentor?") == 2  # the cap, for the mentee
    assert subjects.count("Time to meet Mina Mentee?") == 2
    (escalation,) = [
        m
        for m in smtp_server.messages
        if "casey@" in m["To"] and m["Subject"] == "A mentoring pair may need your help"
    ]
    assert (
        "Mina Mentee and Dr Omar Mentor (Research) have not met yet"
        in parts(escalation)["text/plain"]
    )


def test_goal_checkin_and_weekly_digest_emails_render_what_they_are_about(
    session: Session,
    cast: Cast,
    start_pair: StartPair,
    dispatch: Dispatch,
    smtp_server: CapturedMail,
    clock: time_machine.Traveller,
) -> None:
    from datetime import date

    from plugin.models import Goal, GoalStatus

    rel = start_pair()
    goal = Goal(
        program_id=cast.program.id,
        owner_id=cast.mentee.id,
        relationship_id=rel.id,
        title="Submit the abstract",
        status=GoalStatus.AGREED,
        target_date=date(2026, 3, 20),
        progress=40,
    )
    session.add(goal)
    session.commit()
    reconcile(session, program_id=cast.program.id)
    dispatch()  # introductions and this Monday's digest (08:00 Chicago, an hour ago)
    (digest,) = [m for m in smtp_server.messages if "casey@" in m["To"]]
    assert digest["Subject"] == "Mentorship: your weekly mentoring digest"
    assert "- active relationships: 1" in parts(digest)["text/plain"]
    clock.move_to(datetime(2026, 3, 13, 15, 0, tzinfo=UTC))  # the check-ins came due on the 13th
    dispatch()
    checkins = [m for m in smtp_server.messages if m["Subject"].startswith("Check in")]
    assert sorted(m["To"] for m in checkins) == [
        "Dr Omar Mentor <omar@school.example.edu>",
        "Mina Mentee <mina@school.example.edu>",
    ]
    text = parts(checkins[0])["text/plain"]
    assert '"Submit the abstract" is due on 2026-03-20 and stands at 40%' in text
