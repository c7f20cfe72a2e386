"""Periodic jobs, declared as data for RQ's cron (run by ``python -m workers.cron``).

Every job here must be safe to run twice at once: a second cron process, or a slow run
overlapping the next, must not duplicate work.
"""

from __future__ import annotations

from rq import cron

from plugin.jobs import QueueName
from workers import jobs

#: Outbox re-drive: how long a job Redis lost can wait before it is queued again.
cron.register(jobs.redrive_outbox, str(QueueName.DEFAULT), interval=60, job_timeout=120)
#: Rotated-out tool keys leave the JWKS (and the database) once their overlap ends.
cron.register(jobs.drop_retired_tool_keys, str(QueueName.LOW), interval=3600, job_timeout=60)
#: Course rosters (NRPS): who joined or left the course since yesterday.
cron.register(jobs.queue_roster_syncs, str(QueueName.LOW), cron="15 3 * * *", job_timeout=300)
#: Calendar sync intents left pending (a lost job, a retry that came due, a provider that
#: was not installed yet) get a drain queued again. The sweep itself can wait behind other
#: work (the drains it queues go to the high queue), so it runs on the low queue.
cron.register(jobs.requeue_calendar_intents, str(QueueName.LOW), interval=300, job_timeout=120)
#: Participation scores (AGS): the daily safety net behind the per-change jobs.
cron.register(
    jobs.queue_participation_scores, str(QueueName.LOW), cron="45 3 * * *", job_timeout=300
)
#: Follow-ups: queue a batch job per 100 due (claims make overlapping ticks harmless).
cron.register(jobs.dispatch_followups, str(QueueName.DEFAULT), interval=60, job_timeout=60)
#: Follow-ups that time alone makes due or obsolete (health checks, digests, nudges).
cron.register(jobs.plan_followups, str(QueueName.LOW), interval=3600, job_timeout=600)
