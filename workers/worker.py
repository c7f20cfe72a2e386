"""The worker class: opens the app context once, then runs jobs in-process.

Based on RQ's SimpleWorker (no fork per job): the app, its database pool and Redis
connection are built once per worker process instead of once per job. `bench.jobs`
measures what that buys against RQ's default forking worker. A job that crashes the
interpreter takes the worker down with it; the process manager restarts it and the
outbox sweep re-queues whatever was in flight, so no work is lost.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from rq.job import Job
from rq.queue import Queue
from rq.worker import SimpleWorker

from plugin import create_app
from plugin.logs import bind_context, clear_context

__all__ = ["AppWorker"]


class AppWorker(SimpleWorker):
    """An RQ worker that runs every job inside one long-lived Flask app context."""

    def __init__(self, *args: Any, app: Flask | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app or create_app()
        self._app_context = self.app.app_context()
        self._app_context.push()

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run one job with its id on every log line."""
        bind_context(job_id=job.id, job_func=job.func_name)
        try:
            super().execute_job(job, queue)
        finally:
            clear_context()

    def teardown(self) -> None:
        """Close the app context when the worker stops."""
        try:
            super().teardown()  # type: ignore[no-untyped-call]
        finally:
            if self._app_context is not None:
                self._app_context.pop()
                self._app_context = None  # type: ignore[assignment]
