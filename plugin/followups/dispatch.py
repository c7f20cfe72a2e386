"""The dispatcher: send due follow-ups once, politely, in batches.

Every minute the cron tick (:func:`dispatch_tick`) counts what is due (an index range scan
on ``(state, due_at)``) and queues one RQ job per batch of ``BATCH_SIZE``; it never loads
what is not due. Each batch job (:func:`send_due_batch`):

1. **claims** up to ``BATCH_SIZE`` due rows in one statement: ``UPDATE ... SET state =
   'sending', claim_token, lease_until WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``
   (SQLite takes its write lock instead), so two workers never claim the same row;
2. per row, applies the recipient's preferences (unsubscribed, muted kinds, no address:
   *skipped*), quiet hours in their zone (*deferred* to the end, not dropped) and the
   daily cap (*deferred* to their next day);
3. records a ``queued`` :class:`Delivery` with the message's stable Message-ID and
   **commits before** handing the message to the channel, then records ``sent``. A worker
   that dies in between leaves a ``queued`` delivery behind: after the lease,
   :func:`recover_expired` plans it again and it is resent with the same Message-ID (never
   lost; a receiver that already has it drops the copy). A claim with no ``queued``
   delivery was never handed over and is simply released.

Definite channel failures are retried with back-off up to ``MAX_ATTEMPTS``, always with
the same Message-ID.
"""

from __future__ import annotations

import math
import secrets
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from jinja2 import TemplateError
from redis import Redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from plugin.config import Settings
from plugin.db import utcnow
from plugin.followups.channels import Channel, EmailChannel, InAppChannel, Sender
from plugin.followups.errors import ChannelError
from plugin.followups.planner import still_wanted
from plugin.followups.policy import local_moment, parse_hhmm, quiet_until, zone_named
from plugin.followups.render import render_followup
from plugin.followups.rules import RuleSet
from plugin.followups.unsubscribe import preference_for, unsubscribe_token
from plugin.jobs import QueueName, enqueue, job_id_for
from plugin.logs import get_logger
from plugin.models import (
    Delivery,
    DeliveryOutcome,
    FollowUp,
    FollowUpKind,
    FollowUpState,
    HealthCheck,
    MeetingFeedback,
    Participant,
    ParticipantStatus,
)

__all__ = [
    "BATCH_SIZE",
    "LEASE",
    "BatchReport",
    "DispatchConfig",
    "TickReport",
    "channel_from_settings",
    "claim_due",
    "count_due",
    "dispatch_tick",
    "recover_expired",
    "send_due_batch",
]

log = get_logger(__name__)

#: Follow-ups per batch job: one SMTP connection, one claim statement.
BATCH_SIZE: Final = 100
#: At most this many batch jobs per tick (10,000 messages a minute); the rest waits.
MAX_BATCHES_PER_TICK: Final = 100
#: A batch job's RQ timeout; the lease is longer, so a live worker never loses its claim.
BATCH_TIMEOUT: Final = 300
LEASE: Final = timedelta(seconds=BATCH_TIMEOUT * 3)
#: Definite failures (relay down, recipient refused) are retried this many times in all.
MAX_ATTEMPTS: Final = 5
RETRY_AFTER: Final = (
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
SEND_BATCH_JOB: Final = "workers.jobs.send_followup_batch"


@dataclass(frozen=True)
class DispatchConfig:
    """What the dispatcher needs from the settings."""

    base_url: str
    mail_from: str
    secret_key: str
    quiet_start: str = "21:00"
    quiet_end: str = "08:00"
    daily_cap: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchConfig:
        assert settings.secret_key is not None
        return cls(
            base_url=settings.base_url or "http://localhost:5000",
            mail_from=settings.mail_from,
            secret_key=settings.secret_key.get_secret_value(),
            quiet_start=settings.followup_quiet_start,
            quiet_end=settings.followup_quiet_end,
            daily_cap=settings.followup_daily_cap,
        )


def channel_from_settings(settings: Settings) -> EmailChannel:
    """The e-mail channel: SMTP when configured, the development outbox when not."""
    smtp = settings.smtp_url.get_secret_value() if settings.smtp_url else None
    return EmailChannel(smtp, settings.mail_from, outbox_only=not settings.is_production)


@dataclass(frozen=True)
class TickReport:
    due: int = 0
    batches: int = 0
    released: int = 0
    interrupted: int = 0


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    deferred: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    lost_claim: int = 0


def _due(now: datetime) -> Any:
    return (FollowUp.state == FollowUpState.PLANNED) & (FollowUp.due_at <= now)


def count_due(session: Session, now: datetime, limit: int) -> int:
    """How many follow-ups are due, counting no further than ``limit`` (index range scan)."""
    due_ids = select(FollowUp.id).where(_due(now)).limit(limit).subquery()
    return int(session.scalar(select(func.count()).select_from(due_ids)) or 0)


#: Why an interrupted handover is sent again rather than given up (see recover_expired).
RESEND_REASON: Final = (
    "resending: interrupted while handing the message over; it carries the same Message-ID, "
    "so a receiver that already has it keeps one copy"
)


def recover_expired(session: Session, now: datetime) -> tuple[int, int]:
    """Claims whose lease ran out: release them, and resend those interrupted mid-handover.

    A claim with a ``queued`` delivery died during the handover: the relay may or may not
    have the message. It is planned again and sent with the same Message-ID (receivers
    drop a repeat Message-ID), so it is never lost; after ``MAX_ATTEMPTS`` it fails. Set-based
    writes only (no read first: on SQLite a transaction that reads and then writes can fail
    outright when another writer committed in between). Returns (released, interrupted).
    """
    expired = (FollowUp.state == FollowUpState.SENDING) & (FollowUp.lease_until < now)
    handed_over = (
        select(Delivery.id)
        .where(Delivery.followup_id == FollowUp.id, Delivery.outcome == DeliveryOutcome.QUEUED)
        .exists()
    )
    released_claim = {"claim_token": "", "lease_until": None, "updated_at": now}
    interrupted_ids = list(
        session.scalars(
            update(FollowUp)
            .where(expired, handed_over, FollowUp.attempts + 1 >= MAX_ATTEMPTS)
            .values(
                state=FollowUpState.FAILED,
                reason="gave up: interrupted during every handover",
                attempts=FollowUp.attempts + 1,
                **released_claim,
            )
            .returning(FollowUp.id)
            .execution_options(synchronize_session=False)
        )
    )
    interrupted_ids += session.scalars(
        update(FollowUp)
        .where(expired, handed_over)
        .values(
            state=FollowUpState.PLANNED,
            reason=RESEND_REASON,
            attempts=FollowUp.attempts + 1,
            **released_claim,
        )
        .returning(FollowUp.id)
        .execution_options(synchronize_session=False)
    )
    if interrupted_ids:
        session.execute(
            update(Delivery)
            .where(
                Delivery.followup_id.in_(interrupted_ids),
                Delivery.outcome == DeliveryOutcome.QUEUED,
            )
            .values(
                outcome=DeliveryOutcome.FAILED,
                reason="interrupted: the worker stopped during the handover",
            )
            .execution_options(synchronize_session=False)
        )
    released = len(
        session.execute(
            update(FollowUp)
            .where(expired)
            .values(
                state=FollowUpState.PLANNED,
                reason="released: the worker holding it stopped before sending",
                **released_claim,
            )
            .returning(FollowUp.id)
            .execution_options(synchronize_session=False)
        ).all()
    )
    if released or interrupted_ids:
        log.warning("followups.recovered", released=released, interrupted=len(interrupted_ids))
    return released, len(interrupted_ids)


def dispatch_tick(session: Session, connection: Redis, now: datetime | None = None) -> TickReport:
    """Cron: recover expired claims, then queue one batch job per ``BATCH_SIZE`` due."""
    now = now or utcnow()
    released, interrupted = recover_expired(session, now)
    session.commit()
    due = count_due(session, now, BATCH_SIZE * MAX_BATCHES_PER_TICK)
    batches = math.ceil(due / BATCH_SIZE)
    slot = int(now.timestamp() // 60)
    for index in range(batches):
        enqueue(
            SEND_BATCH_JOB,
            job_id=job_id_for(SEND_BATCH_JOB, slot, index),
            queue=QueueName.DEFAULT,
            timeout=BATCH_TIMEOUT,
            retry_intervals=(),  # the next tick is the retry; claims make repeats harmless
            connection=connection,
        )
    if due:
        log.info("followups.tick", due=due, batches=batches)
    return TickReport(due=due, batches=batches, released=released, interrupted=interrupted)


def claim_due(session: Session, now: datetime, limit: int, token: str) -> list[int]:
    """Claim up to ``limit`` due follow-ups for ``token``, atomically; returns their ids."""
    candidates = (
        select(FollowUp.id)
        .where(_due(now))
        .order_by(FollowUp.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers instead
        .scalar_subquery()
    )
    claimed = session.execute(
        update(FollowUp)
        .where(FollowUp.id.in_(candidates), FollowUp.state == FollowUpState.PLANNED)
        .values(
            state=FollowUpState.SENDING,
            claim_token=token,
            lease_until=now + LEASE,
            updated_at=now,
        )
        .returning(FollowUp.id)
        .execution_options(synchronize_session=False)
    )
    ids = sorted(claimed.scalars().all())
    session.commit()
    return ids


def _finish(
    session: Session, row_id: int, token: str, *, keep: bool = False, **values: Any
) -> bool:
    """Move our claimed row on (``keep``: only touch it, keeping the claim); False if the
    claim is no longer ours (its lease expired and another dispatcher recovered it)."""
    if not keep:
        values.update(claim_token="", lease_until=None)
    result = session.execute(
        update(FollowUp)
        .where(
            FollowUp.id == row_id,
            FollowUp.claim_token == token,
            FollowUp.state == FollowUpState.SENDING,
        )
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def _valid_hhmm(*values: object) -> bool:
    try:
        for value in values:
            parse_hhmm(str(value))
    except ValueError:
        return False
    return all(isinstance(v, str) for v in values)


def _sent_today(session: Session, recipient_id: int, day_start: datetime) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                FollowUp.recipient_id == recipient_id,
                FollowUp.sent_at >= day_start,
                FollowUp.state == FollowUpState.SENT,
            )
        )
        or 0
    )


def _already_answered(session: Session, row: FollowUp) -> bool:
    """A request for an answer the recipient already gave (health check, meeting feedback)."""
    if row.kind == FollowUpKind.HEALTH_CHECK and row.relationship_id is not None:
        period = row.refs.get("period")
        return (
            isinstance(period, int)
            and (
                session.scalar(
                    select(func.count())
                    .select_from(HealthCheck)
                    .where(
                        HealthCheck.relationship_id == row.relationship_id,
                        HealthCheck.author_id == row.recipient_id,
                        HealthCheck.period == period,
                    )
                )
                or 0
            )
            > 0
        )
    if row.kind == FollowUpKind.MEETING_FEEDBACK and row.meeting_id is not None:
        return (
            session.scalar(
                select(func.count())
                .select_from(MeetingFeedback)
                .where(
                    MeetingFeedback.meeting_id == row.meeting_id,
                    MeetingFeedback.author_id == row.recipient_id,
                )
            )
            or 0
        ) > 0
    return False


class _Batch:
    """One batch job's state: its claim token, the channels' senders and the report."""

    def __init__(
        self,
        session: Session,
        channel: Channel,
        config: DispatchConfig,
        now: datetime,
        rules: RuleSet | None,
    ) -> None:
        self.session, self.config, self.now = session, config, now
        #: By name; a person's preference picks one, e-mail when theirs is unknown.
        self.channels: dict[str, Channel] = {"in_app": InAppChannel(session)}
        self.channels[channel.name] = channel
        self.default = channel
        self.rules = rules
        self.token = secrets.token_hex(12)
        self.report = BatchReport()
        self.stack = ExitStack()
        self._senders: dict[str, Sender] = {}
        self._open_errors: dict[str, str] = {}

    def sender(self, channel: Channel) -> Sender:
        """The channel's sender, opened on first use (no connection for an all-quiet batch)."""
        if channel.name in self._open_errors:  # one failed connection per batch, not per row
            raise ChannelError(self._open_errors[channel.name])
        if channel.name not in self._senders:
            try:
                self._senders[channel.name] = self.stack.enter_context(channel.open())
            except ChannelError as exc:
                self._open_errors[channel.name] = str(exc)
                raise
        return self._senders[channel.name]

    def process(self, row_id: int) -> None:
        session = self.session
        # Write first, so the transaction holds SQLite's write lock before it reads (and
        # checks on every backend that the claim is still ours).
        if not _finish(session, row_id, self.token, state=FollowUpState.SENDING, keep=True):
            session.commit()
            self.report.lost_claim += 1
            return
        row = session.get(FollowUp, row_id, populate_existing=True)
        assert row is not None
        recipient: Participant = row.recipient
        if recipient.status != ParticipantStatus.ACTIVE:
            self._close(row, FollowUpState.CANCELLED, "the recipient left the program")
            self.report.cancelled += 1
            return
        if not still_wanted(session, row, now=self.now, rules=self.rules):
            self._close(row, FollowUpState.CANCELLED, "obsolete when it came due")
            self.report.cancelled += 1
            return
        preference = preference_for(session, recipient.id)
        channel = self.channels.get(preference.channel, self.default)
        address = channel.address_of(recipient)
        skip = (
            "already answered"
            if _already_answered(session, row)
            else "unsubscribed"
            if preference.unsubscribed_at is not None
            else "muted by the recipient"
            if row.kind.value in preference.muted_kinds
            else f"no {channel.name} address"
            if address is None
            else ""
        )
        if skip:
            session.add(
                Delivery(
                    followup_id=row.id,
                    channel=channel.name,
                    outcome=DeliveryOutcome.SKIPPED,
                    reason=skip,
                )
            )
            self._close(row, FollowUpState.SKIPPED, skip)
            self.report.skipped += 1
            return
        assert address is not None
        zone = zone_named(recipient.profile.time_zone if recipient.profile else None)
        # A notice on their pages wakes nobody: quiet hours hold back what reaches a device.
        quiet_end = None
        if not channel.transactional:
            start, end = self._quiet_hours(preference.quiet_start, preference.quiet_end, row)
            quiet_end = quiet_until(self.now, zone, parse_hhmm(start), parse_hhmm(end))
        if quiet_end is not None:
            self._close(row, FollowUpState.PLANNED, "deferred: quiet hours", due_at=quiet_end)
            self.report.deferred += 1
            return
        today = self.now.astimezone(zone).date()
        day_start = local_moment(today, datetime.min.time(), zone)
        cap = preference.daily_cap or self.config.daily_cap
        if _sent_today(session, recipient.id, day_start) >= cap:
            tomorrow = local_moment(today + timedelta(days=1), datetime.min.time(), zone)
            self._close(row, FollowUpState.PLANNED, "deferred: daily cap", due_at=tomorrow)
            self.report.deferred += 1
            return
        self._send(row, channel, address, preference.participant_id)

    def _quiet_hours(self, start: str | None, end: str | None, row: FollowUp) -> tuple[str, str]:
        """The person's own quiet hours, else their program's (coordinator settings), else
        the site's."""
        if start and end:
            return start, end
        program = row.recipient.program
        stored = (program.followup_settings or {}).get("quiet_hours")
        if isinstance(stored, dict) and _valid_hhmm(stored.get("start"), stored.get("end")):
            return str(stored["start"]), str(stored["end"])
        return self.config.quiet_start, self.config.quiet_end

    def _send(self, row: FollowUp, channel: Channel, address: str, participant_id: int) -> None:
        session = self.session
        preference = preference_for(session, participant_id)
        token = unsubscribe_token(self.config.secret_key, preference)
        try:
            outgoing = render_followup(
                session,
                row,
                base_url=self.config.base_url,
                mail_from=self.config.mail_from,
                unsubscribe_url=f"{self.config.base_url}/unsubscribe/{token}",
                to_address=address,
            )
        except (TemplateError, LookupError, AttributeError, TypeError, ValueError) as exc:
            # One broken row (what it refers to is gone) must not hold up the batch, nor
            # come back every minute: it fails, visibly, with the error's type.
            log.error("followups.render_failed", followup_id=row.id, error=type(exc).__name__)
            self._close(row, FollowUpState.FAILED, f"cannot render: {type(exc).__name__}")
            self.report.failed += 1
            return
        # Every attempt carries the Message-ID recorded first, even if the From domain (which
        # names new ones) changed since: that is what lets a receiver drop a repeat.
        recorded = session.scalar(
            select(Delivery.message_id)
            .where(
                Delivery.followup_id == row.id,
                Delivery.channel == channel.name,
                Delivery.message_id != "",
            )
            .order_by(Delivery.id)
            .limit(1)
        )
        if recorded:
            outgoing = replace(outgoing, message_id=recorded)
        delivery = Delivery(
            followup_id=row.id,
            channel=channel.name,
            outcome=DeliveryOutcome.QUEUED,
            message_id=outgoing.message_id,
            subject=outgoing.subject[:255],
        )
        session.add(delivery)
        session.commit()  # the marker is durable before the relay sees anything
        try:
            self.sender(channel)(outgoing)
        except ChannelError as exc:
            delivery.outcome, delivery.reason = DeliveryOutcome.FAILED, str(exc)
            attempts = row.attempts + 1
            if attempts >= MAX_ATTEMPTS:
                self._close(row, FollowUpState.FAILED, f"gave up: {exc}", attempts=attempts)
                self.report.failed += 1
            else:
                retry_at = self.now + RETRY_AFTER[min(attempts, len(RETRY_AFTER)) - 1]
                self._close(
                    row,
                    FollowUpState.PLANNED,
                    f"retrying: {exc}",
                    due_at=retry_at,
                    attempts=attempts,
                )
                self.report.retrying += 1
            return
        delivery.outcome = DeliveryOutcome.SENT
        attempts = row.attempts + 1
        if not _finish(
            session,
            row.id,
            self.token,
            state=FollowUpState.SENT,
            reason="",
            sent_at=utcnow(),
            attempts=attempts,
        ):
            self.report.lost_claim += 1
            if channel.transactional:
                # Another dispatcher took the row over: undo our notice, it sends its own.
                session.rollback()
                return
        session.commit()
        self.report.sent += 1

    def _close(self, row: FollowUp, state: FollowUpState, reason: str, **values: Any) -> None:
        if not _finish(self.session, row.id, self.token, state=state, reason=reason, **values):
            self.report.lost_claim += 1
        self.session.commit()


def send_due_batch(
    session: Session,
    channel: Channel,
    config: DispatchConfig,
    *,
    now: datetime | None = None,
    limit: int = BATCH_SIZE,
    rules: RuleSet | None = None,
) -> BatchReport:
    """Claim up to ``limit`` due follow-ups and deliver each once (commits as it goes).

    ``rules`` (default: the rules in force) re-check each row just before it is sent.
    """
    now = now or utcnow()
    batch = _Batch(session, channel, config, now, rules)
    ids = claim_due(session, now, limit, batch.token)
    batch.report.claimed = len(ids)
    with batch.stack:
        for row_id in ids:
            batch.process(row_id)
    if ids:
        log.info("followups.batch", **vars(batch.report))
    return batch.report
