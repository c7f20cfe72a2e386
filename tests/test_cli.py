"""The `preceptor` command, run as the real console script.

Operator mistakes (bad or missing settings, unreachable services) must print one line
that names the problem and exit with status 2: never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY

PRECEPTOR = str(Path(sys.executable).parent / "preceptor")


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PRECEPTOR_")}
    clean.update(env)
    return subprocess.run(
        [PRECEPTOR, *args], env=clean, capture_output=True, text=True, timeout=timeout, check=False
    )


def dev_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PRECEPTOR_ENV": "development",
        "PRECEPTOR_INSTANCE_PATH": str(tmp_path),
        "PRECEPTOR_LOG_LEVEL": "WARNING",
        **extra,
    }


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr


def test_check_passes_on_a_migrated_database(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    result = run(
        "check",
        env=dev_env(tmp_path, PRECEPTOR_DATABASE_URL=database_url, PRECEPTOR_REDIS_URL=redis_url),
    )
    assert result.returncode == 0, result.stderr
    assert "database reachable (migrations at head); Redis reachable" in result.stdout


def test_production_without_a_secret_fails_with_one_line(tmp_path: Path) -> None:
    result = run(
        "check",
        env={
            "PRECEPTOR_ENV": "production",
            "PRECEPTOR_DATABASE_URL": "postgresql://u@127.0.0.1/db",
        },
    )
    assert_one_line_error(result, "PRECEPTOR_SECRET_KEY is required when PRECEPTOR_ENV=production")


def test_malformed_database_url_fails_with_one_line(tmp_path: Path) -> None:
    result = run("db", "upgrade", env=dev_env(tmp_path, PRECEPTOR_DATABASE_URL="postgres//x"))
    assert_one_line_error(result, "PRECEPTOR_DATABASE_URL is not a database URL")


def test_unreachable_database_fails_fast_with_one_line(tmp_path: Path) -> None:
    env = dev_env(
        tmp_path,
        PRECEPTOR_DATABASE_URL="postgresql://svc:s3cret@127.0.0.1:1/none",
        PRECEPTOR_DB_CONNECT_TIMEOUT="2",
    )
    for command in (("check",), ("db", "upgrade"), ("db", "current")):
        result = run(*command, env=env)
        assert_one_line_error(
            result, "database postgresql+psycopg://svc:***@127.0.0.1:1/none", "is unreachable"
        )
        assert "s3cret" not in result.stderr


def test_unreachable_redis_fails_with_one_line(database_url: str, tmp_path: Path) -> None:
    result = run(
        "check",
        env=dev_env(
            tmp_path,
            PRECEPTOR_DATABASE_URL=database_url,
            PRECEPTOR_REDIS_URL="redis://:pw@127.0.0.1:1/0",
        ),
    )
    assert_one_line_error(result, "Redis at redis://:***@127.0.0.1:1/0 is unreachable")


def test_missing_redis_url_is_explained(database_url: str, tmp_path: Path) -> None:
    result = run("check", env=dev_env(tmp_path, PRECEPTOR_DATABASE_URL=database_url))
    assert_one_line_error(result, "PRECEPTOR_REDIS_URL is not set", "make run")


def test_db_upgrade_then_current(fresh_database_url: str, tmp_path: Path) -> None:
    env = dev_env(tmp_path, PRECEPTOR_DATABASE_URL=fresh_database_url)
    before = run("db", "current", env=env)
    assert before.stdout.startswith("empty: behind")
    upgraded = run("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert run("db", "current", env=env).stdout.strip().endswith(": up to date")
    assert run("db", "upgrade", env=env).returncode == 0  # idempotent


def test_dev_keys_are_made_once(tmp_path: Path) -> None:
    first = run("keys", "dev", env=dev_env(tmp_path))
    second = run("keys", "dev", env=dev_env(tmp_path))
    assert first.stdout.startswith("created development key")
    assert second.stdout.startswith("kept development key")
    assert first.stdout.split()[3] == second.stdout.split()[3]  # same kid


def test_dev_keys_are_refused_in_production(tmp_path: Path) -> None:
    env = {
        "PRECEPTOR_ENV": "production",
        "PRECEPTOR_SECRET_KEY": TEST_SECRET_KEY,
        "PRECEPTOR_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "PRECEPTOR_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "PRECEPTOR_REDIS_URL": "redis://127.0.0.1:1/0",
        "PRECEPTOR_INSTANCE_PATH": str(tmp_path),
    }
    assert_one_line_error(run("keys", "dev", env=env), "not for production")


@pytest.mark.parametrize("command", ["new-key", "new-fernet-key"])
def test_secret_generators_print_usable_values(command: str, tmp_path: Path) -> None:
    value = run("secrets", command, env={}).stdout.strip()
    if command == "new-fernet-key":
        Fernet(value)
    else:
        assert len(value) >= 48


def test_starting_the_app_does_not_import_the_matching_engines_numeric_stack(
    tmp_path: Path,
) -> None:
    # Every web process, worker and command starts the app; NumPy, SciPy and scikit-learn
    # cost seconds of imports and only a match round or mentor ranking needs them.
    probe = (
        "import sys\n"
        "from plugin import create_app\n"
        "create_app()\n"
        "heavy = sorted(m for m in ('numpy', 'scipy', 'sklearn') if m in sys.modules)\n"
        "print(','.join(heavy) or 'none')\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PRECEPTOR_")}
    clean.update(dev_env(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none"
