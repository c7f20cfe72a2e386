"""The queues a worker serves, highest priority first."""

from __future__ import annotations

from plugin.jobs import QueueName

__all__ = ["WORKER_QUEUES"]

#: Order matters: RQ takes from the first non-empty queue.
WORKER_QUEUES: tuple[str, ...] = tuple(
    str(q) for q in (QueueName.HIGH, QueueName.DEFAULT, QueueName.LOW)
)
