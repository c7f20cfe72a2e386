"""Typed settings read from ``PRECEPTOR_*`` environment variables.

Every setting has one source of truth: the environment (or, in tests, the mapping handed
to :func:`plugin.create_app`). Development gets working defaults (SQLite under
``instance/`` and secrets generated once into that folder); production refuses to start
while a secret is missing, naming the variable to set.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["ConfigError", "Environment", "Settings", "env_name", "load_settings"]

ENV_PREFIX = "PRECEPTOR_"

#: Secrets shorter than this are refused in production: a guessable key signs sessions.
MIN_SECRET_KEY_LENGTH = 32

#: Settings production refuses to run without, with what to put in them.
REQUIRED_IN_PRODUCTION: dict[str, str] = {
    "secret_key": "a random string of 32+ characters (`preceptor secrets new-key`)",
    "encryption_key": "a Fernet key (`preceptor secrets new-fernet-key`)",
    "database_url": "a PostgreSQL URL, e.g. postgresql://user:password@host:5432/preceptor",
    "redis_url": "a Redis URL, e.g. redis://host:6379/0 or rediss://... for TLS",
}


class ConfigError(Exception):
    """Configuration that cannot work; the message is one line saying what to fix."""


class Environment(StrEnum):
    """Where the app runs; decides defaults and how strict start-up is."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return f"{ENV_PREFIX}{field.upper()}"


class Settings(BaseSettings):
    """All of Preceptor's settings; see the configuration table in the README."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True
    )

    env: Environment = Environment.DEVELOPMENT
    secret_key: SecretStr | None = None
    encryption_key: SecretStr | None = Field(
        default=None, description="Comma-separated Fernet keys; the first encrypts, all decrypt."
    )
    database_url: str | None = None
    redis_url: str | None = None
    instance_path: Path = Path("instance")
    base_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] | None = None
    #: CSP frame-ancestors: which sites may show Preceptor in an iframe (the LMS).
    frame_ancestors: str = "*"
    #: How many reverse proxies in front set X-Forwarded-*; 0 trusts none.
    trusted_proxies: int = Field(default=0, ge=0, le=5)
    #: Serve the built-in development LMS at /dev/platform (default: in development only).
    dev_platform: bool | None = None
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_connect_timeout: int = Field(default=5, ge=1, le=120)
    # Calendar providers (plugin/calendars). Endpoints are settable for national clouds and
    # test servers; the client ids and secrets come from the Google Cloud / Entra app.
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    google_api_root: str = "https://www.googleapis.com"
    google_token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
    google_auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"
    microsoft_client_id: str | None = None
    microsoft_client_secret: SecretStr | None = None
    #: Authority with tenant, e.g. https://login.microsoftonline.us/<tenant> for GCC High.
    microsoft_authority: str = "https://login.microsoftonline.com/common"
    microsoft_graph_root: str = "https://graph.microsoft.com/v1.0"
    calendar_http_timeout: float = Field(default=30.0, gt=0, le=300)
    #: Seconds a page waits for a connected calendar's free/busy before suggesting times
    #: from declared availability alone (per request; token refresh plus request at most
    #: twice this).
    freebusy_timeout: float = Field(default=3.0, gt=0, le=30)
    #: Seconds a person's free/busy is reused before their calendar is asked again.
    freebusy_cache_seconds: int = Field(default=120, ge=0, le=3600)
    #: Outgoing mail relay: smtp://[user:password@]host:port (add ?starttls=1 for STARTTLS) or
    #: smtps://... (implicit TLS). Unset in development and test: mail goes to the /dev/mail
    #: outbox only. Unset in production: follow-up e-mails fail with that reason, visibly.
    smtp_url: SecretStr | None = None
    #: The From address of follow-up e-mails (its domain also names Message-IDs).
    mail_from: str = "Preceptor <preceptor@localhost>"
    #: Per-person defaults a participant's NotificationPreference may override.
    followup_daily_cap: int = Field(default=3, ge=1, le=50)
    followup_quiet_start: str = Field(default="21:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    followup_quiet_end: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return normalise_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("encryption_key")
    @classmethod
    def _check_encryption_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        keys = [k.strip() for k in value.get_secret_value().split(",") if k.strip()]
        if not keys:
            raise ValueError("is empty")
        for key in keys:
            try:
                Fernet(key)
            except ValueError:
                raise ValueError(
                    "is not a valid Fernet key (32 url-safe base64-encoded bytes)"
                ) from None
        return SecretStr(",".join(keys))

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        if not value.get_secret_value().startswith(("smtp://", "smtps://")):
            raise ValueError(
                "must start with smtp:// or smtps://, e.g. smtp://relay.example.edu:587"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError(
                "must be an absolute http(s) URL such as https://preceptor.example.edu"
            )
        return value.rstrip("/")

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def dev_platform_enabled(self) -> bool:
        if self.dev_platform is None:
            return self.env is Environment.DEVELOPMENT
        return self.dev_platform

    @property
    def resolved_log_format(self) -> Literal["json", "console"]:
        if self.log_format is not None:
            return self.log_format
        return "console" if self.env is Environment.DEVELOPMENT else "json"

    def fernet_keys(self) -> list[str]:
        """The configured Fernet keys, primary first."""
        if self.encryption_key is None:
            raise ConfigError(f"{env_name('encryption_key')} is not set")
        return self.encryption_key.get_secret_value().split(",")


def normalise_database_url(value: str) -> str:
    """Check a database URL and pin PostgreSQL to the psycopg 3 driver."""
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(
            "is not a database URL; expected e.g. postgresql://user:password@host:5432/db "
            "or sqlite:///path/to/file.db"
        ) from None
    backend = url.get_backend_name()
    if backend == "postgresql":
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        if not url.database:
            raise ValueError("names no database; add /DBNAME at the end")
    elif backend == "sqlite":
        pass
    else:
        raise ValueError(f"uses {backend!r}; Preceptor supports postgresql and sqlite")
    return url.render_as_string(hide_password=False)


def _one_line(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(
            f"{env_name(field)} {message}"
            if field in Settings.model_fields
            else f"unknown setting {field!r}"
        )
    return "; ".join(parts)


def _instance_secret(path: Path, make: Any) -> str:
    """Read a development secret from the instance folder, creating it on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value: str = make()
    # O_EXCL: two processes starting together must agree on one value.
    try:
        with path.open("x") as handle:
            handle.write(value)
        path.chmod(0o600)
    except FileExistsError:
        return path.read_text().strip()
    return value


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build the settings from the environment plus ``overrides`` (field names as keys).

    Raises ConfigError with one line naming the variable when something is wrong.
    """
    try:
        settings = Settings(**dict(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None

    if settings.is_production:
        missing = [name for name in REQUIRED_IN_PRODUCTION if getattr(settings, name) is None]
        if missing:
            name = missing[0]
            raise ConfigError(
                f"{env_name(name)} is required when PRECEPTOR_ENV=production: "
                f"set it to {REQUIRED_IN_PRODUCTION[name]}"
            )
        if settings.dev_platform:
            raise ConfigError(
                f"{env_name('dev_platform')} cannot be on in production: it signs launches "
                "with a key anyone with the code can read"
            )
        assert settings.secret_key is not None
        if len(settings.secret_key.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                f"{env_name('secret_key')} is too short for production: "
                f"use at least {MIN_SECRET_KEY_LENGTH} random characters"
            )
        return settings

    # Development and test: fill what is missing with local, per-checkout defaults.
    instance = settings.instance_path.resolve()
    filled: dict[str, Any] = {"instance_path": instance}
    if settings.database_url is None:
        filled["database_url"] = f"sqlite:///{instance / 'preceptor.db'}"
    if settings.secret_key is None:
        filled["secret_key"] = _instance_secret(
            instance / "secret_key", lambda: secrets.token_urlsafe(48)
        )
    if settings.encryption_key is None:
        filled["encryption_key"] = _instance_secret(
            instance / "encryption_key", lambda: Fernet.generate_key().decode()
        )
    return settings.model_copy(update=_validated(filled))


def _validated(values: dict[str, Any]) -> dict[str, Any]:
    # model_copy(update=...) skips validation; run the field validators explicitly.
    out = dict(values)
    if "database_url" in out:
        out["database_url"] = normalise_database_url(out["database_url"])
    if "secret_key" in out:
        out["secret_key"] = SecretStr(out["secret_key"])
    if "encryption_key" in out:
        out["encryption_key"] = Settings._check_encryption_key(SecretStr(out["encryption_key"]))
    return out
