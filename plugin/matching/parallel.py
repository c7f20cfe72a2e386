"""Blocks of scores computed on several threads, in order.

NumPy's element-wise steps and sorts release the GIL but run on one core, and they are
about half of a block's time (the matrix products are the other half). Two blocks at
once on two cores, each product on one BLAS thread, keep both cores busy through the
whole block instead of only during products. The BLAS limit is process-wide
(threadpoolctl), so it is held only while the blocks run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from threadpoolctl import threadpool_limits

__all__ = ["MAX_THREADS", "in_order", "thread_count"]

T = TypeVar("T")
R = TypeVar("R")

#: Beyond this many threads the blocks compete for memory bandwidth.
MAX_THREADS = 4


def thread_count(requested: int) -> int:
    """``requested`` threads, or with 0 the CPUs this process may use (at most MAX_THREADS)."""
    if requested:
        return requested
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, MAX_THREADS))


def in_order(work: Callable[[T], R], items: Sequence[T], threads: int) -> Iterator[R]:
    """``work(item)`` for each item, results in the items' order.

    With one thread or one item this is a plain loop (BLAS keeps its own threads). Work
    must not share mutable state between items.
    """
    if threads <= 1 or len(items) <= 1:
        yield from map(work, items)
        return
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        # At most ``threads`` blocks ahead of the consumer: each holds block x mentors arrays.
        pending = []
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) > threads:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()
