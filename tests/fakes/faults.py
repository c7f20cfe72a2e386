"""Fault injection and counters shared by the fake Google and Graph servers."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass


@dataclass
class Fault:
    """Answer the next ``remaining`` API operations with ``status`` (and ``reason``).

    ``after_commit``: do the work first, then answer with the fault, as when a response is
    lost after the service already acted (the case that makes naive retries duplicate).
    """

    remaining: int
    status: int
    reason: str = ""
    retry_after: str | None = None
    after_commit: bool = False
    #: "any" (single requests and batch items), "single" or "batch_item".
    scope: str = "any"


class FaultPlan:
    """A thread-safe queue of faults plus request counters and an injected latency."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self.counts: Counter[str] = Counter()
        #: Seconds every HTTP request waits before it is answered (the benchmark's knob).
        self.latency = 0.0

    def fail_next(
        self,
        count: int,
        status: int,
        reason: str = "",
        *,
        retry_after: float | str | None = None,
        after_commit: bool = False,
        scope: str = "any",
    ) -> None:
        """The next ``count`` operations (in ``scope``) answer ``status``."""
        with self._lock:
            self._faults.append(
                Fault(
                    count,
                    status,
                    reason,
                    None if retry_after is None else str(retry_after),
                    after_commit,
                    scope,
                )
            )

    def take(self, scope: str) -> Fault | None:
        """The fault for the next operation in ``scope`` ("single" or "batch_item"), if any."""
        with self._lock:
            for fault in self._faults:
                if fault.scope in ("any", scope):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def wait(self) -> None:
        if self.latency > 0:
            time.sleep(self.latency)
