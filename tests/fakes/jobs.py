"""Job functions for tests, run by a real RQ worker. Each records its runs in Redis."""

from __future__ import annotations

import time

from plugin.jobs import get_redis
from plugin.logs import get_logger

log = get_logger(__name__)


def runs(name: str) -> int:
    """How many times a job named ``name`` completed."""
    value = get_redis().get(f"test:runs:{name}")
    return int(value) if value is not None else 0


def touch(name: str) -> int:
    """Count one completed run of ``name``."""
    log.info("test.touch", marker=name)
    return int(get_redis().incr(f"test:runs:{name}"))


def fail_times(name: str, failures: int) -> int:
    """Fail the first ``failures`` attempts, then count a completed run."""
    attempt = int(get_redis().incr(f"test:attempts:{name}"))
    if attempt <= failures:
        raise RuntimeError(f"planned failure {attempt} of {failures}")
    return touch(name)


def always_fail(name: str) -> None:
    get_redis().incr(f"test:attempts:{name}")
    raise ValueError("this job never works")


def slow_touch(name: str, seconds: float) -> int:
    """First attempt: mark the start and sleep (a worker can be killed here). Then count a run."""
    first_attempt = get_redis().set(f"test:started:{name}", 1, nx=True)
    if first_attempt:
        time.sleep(seconds)
    return touch(name)
