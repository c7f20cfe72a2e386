"""Settings: defaults for development, refusals for production, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from plugin.config import REQUIRED_IN_PRODUCTION, ConfigError, Environment, load_settings

PRODUCTION = {
    "env": "production",
    "secret_key": "s" * 40,
    "encryption_key": Fernet.generate_key().decode(),
    "database_url": "postgresql://preceptor@db.internal/preceptor",
    "redis_url": "redis://cache.internal:6379/0",
}


def test_production_settings_load() -> None:
    settings = load_settings(PRODUCTION)
    assert settings.env is Environment.PRODUCTION
    assert settings.database_url == "postgresql+psycopg://preceptor@db.internal/preceptor"
    assert settings.resolved_log_format == "json"


@pytest.mark.parametrize("missing", sorted(REQUIRED_IN_PRODUCTION))
def test_production_refuses_to_start_without_a_secret(missing: str) -> None:
    config = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    message = str(error.value)
    assert f"PRECEPTOR_{missing.upper()} is required when PRECEPTOR_ENV=production" in message
    assert "\n" not in message


def test_production_refuses_a_short_secret_key() -> None:
    with pytest.raises(ConfigError, match="PRECEPTOR_SECRET_KEY is too short"):
        load_settings({**PRODUCTION, "secret_key": "changeme"})


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("database_url", "not a url", "PRECEPTOR_DATABASE_URL is not a database URL"),
        ("database_url", "mysql://u@h/db", "PRECEPTOR_DATABASE_URL uses 'mysql'"),
        ("database_url", "postgresql://u@h", "PRECEPTOR_DATABASE_URL names no database"),
        ("redis_url", "http://cache:6379", "PRECEPTOR_REDIS_URL must start with redis://"),
        ("encryption_key", "not-a-key", "PRECEPTOR_ENCRYPTION_KEY is not a valid Fernet key"),
        ("base_url", "preceptor.example.edu", "PRECEPTOR_BASE_URL must be an absolute"),
        ("env", "staging", "PRECEPTOR_ENV"),
        ("db_pool_size", "0", "PRECEPTOR_DB_POOL_SIZE"),
    ],
)
def test_malformed_settings_fail_with_one_line_naming_the_variable(
    setting: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({**PRODUCTION, setting: value})
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRECEPTOR_ENV", "production")
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(f"PRECEPTOR_{name.upper()}", value)
    monkeypatch.setenv("PRECEPTOR_LOG_LEVEL", "DEBUG")
    settings = load_settings()
    assert settings.is_production
    assert settings.log_level == "DEBUG"


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'databse_url'"):
        load_settings({"databse_url": "sqlite://"})


def test_development_defaults_are_local_and_stable(tmp_path: Path) -> None:
    first = load_settings({"instance_path": tmp_path})
    second = load_settings({"instance_path": tmp_path})
    assert first.database_url == f"sqlite:///{tmp_path / 'preceptor.db'}"
    assert first.secret_key is not None
    assert second.secret_key is not None
    assert first.secret_key.get_secret_value() == second.secret_key.get_secret_value()
    assert first.fernet_keys() == second.fernet_keys()
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert first.resolved_log_format == "console"


def test_several_encryption_keys_rotate_with_the_first_primary() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = load_settings({**PRODUCTION, "encryption_key": f"{new}, {old}"})
    assert settings.fernet_keys() == [new, old]


def test_smtp_url_must_be_an_smtp_url() -> None:
    from plugin.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="PRECEPTOR_SMTP_URL must start with smtp://"):
        load_settings({"env": "test", "smtp_url": "http://relay.example.edu"})
    with pytest.raises(ConfigError, match="PRECEPTOR_FOLLOWUP_QUIET_START"):
        load_settings({"env": "test", "followup_quiet_start": "25:00"})
    settings = load_settings({"env": "test", "smtp_url": "smtps://u:p@relay.example.edu:465"})
    assert settings.smtp_url is not None
    assert "u:p" not in repr(settings)  # a relay password never reaches a log line
