"""Benchmarks keep running and keep their output contract (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_jobs_benchmark_prints_a_table_and_a_json_last_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRECEPTOR_")}
    result = subprocess.run(
        [sys.executable, "-m", "bench.jobs", "--jobs", "20", "--runs", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("worker")
    figures = json.loads(lines[-1])
    assert figures["bench"] == "jobs"
    assert figures["appworker_jobs_per_s"] > 0
    assert figures["forking_worker_jobs_per_s"] > 0
