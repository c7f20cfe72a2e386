"""The cron process: RQ's CronScheduler, enqueuing with the JSON serializer.

Why not plain ``rq cron workers.schedule``: RQ 3.0's ``CronJob.enqueue`` builds its Queue
with the default (pickle) serializer whatever ``--serializer`` says, and our workers read
JSON only, so every cron job would fail to load. This keeps RQ's scheduler, schedule
format and bookkeeping, and changes only how a due job is queued: JSON, with an id per
(cron job, time slot) so two cron processes cannot queue the same tick twice.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rq.cron import CronJob, CronScheduler
from rq.job import Job
from rq.utils import now

from plugin import create_app
from plugin.config import ConfigError
from plugin.jobs import enqueue, get_redis, job_id_for

__all__ = ["JsonCronJob", "JsonCronScheduler", "main"]


class JsonCronJob(CronJob):
    """A cron entry that queues JSON jobs with a per-slot deterministic id."""

    def enqueue(self, connection: Any) -> Job:
        moment = now()
        period = self.interval or 60
        slot = int(moment.timestamp() // period)
        job = enqueue(
            self.func_name,
            *self.args,
            job_id=job_id_for(self.func_name, "cron", slot),
            queue=self.queue_name,
            timeout=self.job_options.get("job_timeout") or 300,
            retry_intervals=(),  # the next tick is the retry
            connection=connection,
        )
        return (
            job
            if job is not None
            else Job(job_id_for(self.func_name, "cron", slot), connection=connection)
        )


class JsonCronScheduler(CronScheduler):
    """RQ's cron scheduler, building :class:`JsonCronJob` entries."""

    def register(self, func: Any, queue_name: str, *args: Any, **kwargs: Any) -> CronJob:
        entry = super().register(func, queue_name, *args, **kwargs)
        entry.__class__ = JsonCronJob
        return entry


def main(argv: list[str] | None = None) -> int:
    """Run the cron scheduler on the schedule in ``workers.schedule``."""
    parser = argparse.ArgumentParser(prog="python -m workers.cron")
    parser.add_argument("--schedule", default="workers.schedule")
    options = parser.parse_args(argv)
    try:
        app = create_app()
    except ConfigError as exc:
        print(f"preceptor cron: configuration error: {exc}", file=sys.stderr)
        return 2
    with app.app_context():
        scheduler = JsonCronScheduler(connection=get_redis())
        scheduler.load_config_from_file(options.schedule)
        scheduler.start()  # type: ignore[no-untyped-call]
    return 0


if __name__ == "__main__":
    sys.exit(main())
