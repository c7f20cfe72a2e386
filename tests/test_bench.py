"""Benchmarks keep running and keep their output contract (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def run_bench(name: str, *args: str, header: str, timeout: int = 120) -> dict[str, Any]:
    """Run ``python -m bench.NAME`` as a user would (no PRECEPTOR_ settings from the test
    run); check it succeeded, printed a table starting with ``header`` and ended with one
    JSON object; return that object."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRECEPTOR_")}
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(header)
    figures: dict[str, Any] = json.loads(lines[-1])
    assert figures["bench"] == name
    return figures


def test_jobs_benchmark_prints_a_table_and_a_json_last_line() -> None:
    figures = run_bench("jobs", "--jobs", "20", "--runs", "1", header="worker")
    assert figures["appworker_jobs_per_s"] > 0
    assert figures["forking_worker_jobs_per_s"] > 0


def test_calendar_sync_benchmark_prints_a_table_and_a_json_last_line() -> None:
    figures = run_bench("calendar_sync", "--meetings", "20", "--latency", "0", header="sync")
    assert figures["events"] == 40
    # Counted at the fakes, so exact: the naive side makes one request per event (plus
    # at most one token request), the engine far fewer (a batch is one request).
    assert figures["one_at_a_time_requests"] >= 40
    assert figures["engine_requests_per_event"] <= 1


def test_matching_benchmark_quick_mode_prints_a_table_and_a_json_last_line() -> None:
    figures = run_bench("matching", "--quick", header="mentees x mentors", timeout=300)
    sizes = {row["size"]: row for row in figures["sizes"]}
    assert set(sizes) == {"200x50", "scarce:300x60"}
    for row in sizes.values():
        assert row["certified"] is True
        assert row["greedy_score_pct"] <= 100.0
        assert (
            row["optimum_matched"] >= row["greedy_matched"] or row["objective"] == "best_total_fit"
        )


def test_launch_benchmark_prints_a_table_and_a_json_last_line() -> None:
    figures = run_bench(
        "launch",
        *("--launches", "20", "--runs", "1", "--users", "5", "--concurrency", "2"),
        header="launch",
    )
    for side in ("preceptor", "pylti1p3"):
        assert figures[f"{side}_launches_per_s"] > 0
        assert figures[f"{side}_p99_ms"] >= figures[f"{side}_p50_ms"] > 0


def test_followups_benchmark_prints_a_table_and_a_json_last_line() -> None:
    figures = run_bench("followups", "--quick", header="step", timeout=300)
    assert figures["sent"] == figures["due"]
    assert figures["tick_quiet_ms"] > 0
    assert figures["tick_naive_quiet_ms"] > 0
