"""Real processes, started the way the Procfile starts them: worker, cron and `preceptor up`."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import select

from plugin import create_app
from plugin.db import get_db, utcnow
from plugin.jobs import REDRIVE_GRACE, defer, redrive_outbox
from plugin.migrate import upgrade
from plugin.models import OutboxJob, OutboxState
from tests.conftest import app_settings, release_scheduled
from workers.cron import JsonCronScheduler

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def procfile_command(name: str) -> str:
    """The command line of one Procfile process."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} process in the Procfile")


def process_env(app: Flask, **extra: str) -> dict[str, str]:
    settings = app.extensions["preceptor.settings"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRECEPTOR_")}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PRECEPTOR_ENV="test",
        PRECEPTOR_DATABASE_URL=settings.database_url,
        PRECEPTOR_REDIS_URL=settings.redis_url,
        PRECEPTOR_SECRET_KEY=settings.secret_key.get_secret_value(),
        PRECEPTOR_ENCRYPTION_KEY=settings.encryption_key.get_secret_value(),
        PRECEPTOR_INSTANCE_PATH=str(settings.instance_path),
        PRECEPTOR_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def start(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Run a Procfile command; its output goes to a log file named in the process's args."""
    log = Path(env["PRECEPTOR_INSTANCE_PATH"]) / f"process-{time.monotonic_ns()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        # Own process group: `rq worker --with-scheduler` forks a scheduler child, and a
        # machine that dies takes both.
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process.log = log  # type: ignore[attr-defined]
    return process


def finish(process: subprocess.Popen[bytes], timeout: float = 60) -> str:
    """Wait for a process to exit; assert it succeeded, showing its log if not."""
    process.wait(timeout=timeout)
    log: str = process.log.read_text(errors="replace")  # type: ignore[attr-defined]
    assert process.returncode == 0, log[-3000:]
    return log


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def live_app(
    fresh_database_url: str, redis_url: str, redis_conn: Redis, tmp_path: Path
) -> Iterator[Flask]:
    """An app on its own migrated database, with real commits other processes can see."""
    app = create_app(
        app_settings(
            database_url=fresh_database_url,
            redis_url=redis_url,
            instance_path=tmp_path / "instance",
        )
    )
    upgrade(get_db(app).engine)
    with app.app_context():
        yield app
    get_db(app).dispose()


def outbox_rows(app: Flask) -> list[OutboxJob]:
    with get_db(app).session() as session:
        return list(session.scalars(select(OutboxJob).order_by(OutboxJob.id)))


def runs(redis_conn: Redis, name: str) -> int:
    return int(redis_conn.get(f"test:runs:{name}") or 0)


def test_procfile_worker_runs_work_the_web_side_deferred(
    live_app: Flask, redis_conn: Redis
) -> None:
    with get_db(live_app).session_scope() as session:
        defer(session, "tests.fakes.jobs.touch", "procfile")
    finish(start(procfile_command("worker") + " --burst", process_env(live_app)))
    assert runs(redis_conn, "procfile") == 1
    assert [row.state for row in outbox_rows(live_app)] == [OutboxState.DONE]


def test_worker_killed_mid_job_loses_nothing_and_duplicates_nothing(
    live_app: Flask, redis_conn: Redis
) -> None:
    with get_db(live_app).session_scope() as session:
        defer(session, "tests.fakes.jobs.slow_touch", "killed", 60)
    worker = start(procfile_command("worker"), process_env(live_app))
    try:
        wait_for(lambda: redis_conn.exists("test:started:killed"), 60, "the job to start")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # no warm shutdown: the machine died
        worker.wait(timeout=10)
    assert runs(redis_conn, "killed") == 0
    assert [row.state for row in outbox_rows(live_app)] == [OutboxState.PENDING]

    # RQ notices the dead worker once its heartbeat expires; jump to that moment.
    registry = StartedJobRegistry("default", connection=redis_conn, serializer=JSONSerializer)
    registry.cleanup(timestamp=time.time() + 3600)
    release_scheduled(redis_conn, until=time.time() + 3600)  # RQ's retry comes due

    finish(start(procfile_command("worker") + " --burst", process_env(live_app)))
    assert runs(redis_conn, "killed") == 1
    assert [row.state for row in outbox_rows(live_app)] == [OutboxState.DONE]
    with get_db(live_app).session_scope() as session:
        later = utcnow() + REDRIVE_GRACE + timedelta(minutes=5)
        assert redrive_outbox(session, redis_conn, now=later).pushed == 0


@pytest.mark.usefixtures("app")
def test_cron_ticks_are_json_jobs_queued_once_per_slot(redis_conn: Redis, drain_jobs: Any) -> None:
    queue = Queue("default", connection=redis_conn, serializer=JSONSerializer)
    with time_machine.travel(utcnow().replace(second=5), tick=False) as traveller:
        for _ in range(2):  # two cron processes, or two ticks within the same minute
            scheduler = JsonCronScheduler(connection=redis_conn)
            scheduler.load_config_from_file("workers.schedule")
            for entry in scheduler.get_jobs():
                entry.enqueue(redis_conn)
        on_default = [e for e in scheduler.get_jobs() if e.queue_name == "default"]
        assert len(queue.get_job_ids()) == len(on_default)  # each entry once per slot
        traveller.shift(timedelta(minutes=1))
        on_default[0].enqueue(redis_conn)
        assert len(queue.get_job_ids()) == len(on_default) + 1
    # Every entry once, plus the second tick of the first: the JSON worker runs them all.
    assert drain_jobs() == len(scheduler.get_jobs()) + 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_make_run_stack_serves_readyz_with_all_three_processes(tmp_path: Path) -> None:
    """What `make run` does: embedded SQLite and Redis, web + worker + cron under honcho."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRECEPTOR_")}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PRECEPTOR_ENV="development",
        PRECEPTOR_INSTANCE_PATH=str(tmp_path / "instance"),
        PRECEPTOR_LOG_LEVEL="WARNING",
    )
    stack = subprocess.Popen(
        [str(BIN / "preceptor"), "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    ready: dict[str, Any] = {}
    lines: list[str] = []

    def collect() -> None:
        assert stack.stdout is not None
        with stack.stdout:
            for raw in stack.stdout:
                lines.append(raw.decode(errors="replace"))

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()

    def pipeline_works() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
                ready.update(json.load(reply))
        except (urllib.error.URLError, OSError):
            return False
        jobs = ready.get("jobs", {})
        return bool(
            jobs.get("workers")
            and jobs.get("last_job_seconds_ago") is not None
            and jobs.get("cron_heartbeat_seconds_ago") is not None
        )

    banner = f"Preceptor is running: open http://127.0.0.1:{port}/"
    try:
        wait_for(pipeline_works, 90, "web, worker and cron to be up")
        wait_for(lambda: any(banner in line for line in lines), 30, "the URL to be printed")
    except AssertionError:
        os.killpg(stack.pid, signal.SIGKILL)
        stack.wait(timeout=10)
        reader.join(timeout=10)
        raise AssertionError(f"stack not ready: {ready}\n{''.join(lines)[-3000:]}") from None
    os.killpg(stack.pid, signal.SIGINT)  # what Ctrl-C does in the terminal
    assert stack.wait(timeout=60) is not None
    reader.join(timeout=10)
    assert ready["status"] == "ok"
    assert (tmp_path / "instance" / "preceptor.db").exists()
    assert (tmp_path / "instance" / "keys" / "tool-dev-key.pem").exists()
    assert shlex.split(procfile_command("web"))[0] == "preceptor"
