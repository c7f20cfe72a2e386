"""Registrations a web process remembers between launches, and how it learns they changed.

Every launch needs its platform and deployment rows; they change only when an admin adds,
removes or re-registers a platform. A process keeps the rows a launch read (platform and
deployment found, never a miss) for at most LOCAL_TTL seconds, stamped with the
registrations' *generation*: a counter in Redis that every committed change of a
platform or deployment row increments (:func:`registrations_changed`, after commit).

A launch that used a remembered registration reads the generation in the Redis round trip
that consumes its state (``LoginStateStore.consume_launch``): if it moved, the launch
forgets what the process remembered, reads its registration again from the database and
re-checks audience, key and signature before it goes on. A removed platform is therefore
refused from the first launch that follows the removal's commit, in every process. What
this cache cannot see is a row changed by hand in the database (no generation bump): that
is seen within LOCAL_TTL seconds. If Redis is unreachable when a change is committed, the
launch fails at its state step anyway (state lives in Redis), and the entry ages out
within LOCAL_TTL.

What is remembered, and what a launch carries on, are immutable records of the rows
(:class:`PlatformRecord`, :class:`DeploymentRecord`), never ORM instances: nothing a request
does to its own session can reach another request's copy, and no launch pays for merging
rows into its session (a launch uses only their ids and the registration's values).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

from flask import Flask, current_app, has_app_context
from redis import Redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from plugin.logs import get_logger
from plugin.models import Deployment, Platform

__all__ = [
    "GENERATION_KEY",
    "LOCAL_MAX",
    "LOCAL_TTL",
    "DeploymentRecord",
    "FoundRegistration",
    "PlatformRecord",
    "RegistrationCache",
    "registration_cache",
    "registrations_changed",
]

log = get_logger(__name__)

#: The registrations' generation: incremented after every committed change of them.
GENERATION_KEY: Final = "preceptor:lti:registrations:generation"
#: Longest a process trusts a remembered registration without a generation check telling
#: it otherwise (the bound for rows changed by hand in the database).
LOCAL_TTL: Final = 60.0
#: Registrations a process remembers at most (one per platform and deployment in use).
LOCAL_MAX: Final = 512
EXTENSION_KEY: Final = "preceptor.lti.registration_cache"
_PENDING: Final = "preceptor.registrations_changed"


@dataclass(frozen=True, slots=True)
class PlatformRecord:
    """A platform registration's values as a launch read them (immutable, in no session)."""

    id: int
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    accept_new_deployments: bool

    @classmethod
    def of(cls, row: Platform) -> PlatformRecord:
        return cls(
            id=row.id,
            issuer=row.issuer,
            client_id=row.client_id,
            auth_login_url=row.auth_login_url,
            auth_token_url=row.auth_token_url,
            key_set_url=row.key_set_url,
            accept_new_deployments=row.accept_new_deployments,
        )


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """A deployment's values as a launch read them (immutable, in no session)."""

    id: int
    platform_id: int
    deployment_id: str

    @classmethod
    def of(cls, row: Deployment) -> DeploymentRecord:
        return cls(id=row.id, platform_id=row.platform_id, deployment_id=row.deployment_id)


@dataclass(frozen=True)
class FoundRegistration:
    """A platform and its deployment, as a launch found them."""

    platform: PlatformRecord
    deployment: DeploymentRecord | None
    #: The registrations' generation read before the rows were (None: no generation yet).
    generation: str | None


@dataclass(frozen=True)
class _Entry:
    found: FoundRegistration
    until: float


def _generation(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class RegistrationCache:
    """One process's remembered registrations (see the module doc)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._entries: dict[tuple[str, str, str], _Entry] = {}

    def recall(self, iss: str, client_id: str, deployment_id: str) -> FoundRegistration | None:
        """The remembered registration, or None."""
        entry = self._entries.get((iss, client_id, deployment_id))
        if entry is None or entry.until <= time.monotonic():
            return None
        return entry.found

    def generation(self) -> str | None:
        """The registrations' generation now (read before reading rows to remember)."""
        return _generation(self._redis.get(GENERATION_KEY))

    def remember(self, found: FoundRegistration) -> None:
        """Keep ``found`` (immutable records), if its deployment is known."""
        if found.deployment is None:
            return
        if len(self._entries) >= LOCAL_MAX:
            self._entries.clear()
        key = (found.platform.issuer, found.platform.client_id, found.deployment.deployment_id)
        self._entries[key] = _Entry(found, time.monotonic() + LOCAL_TTL)

    def forget(self) -> None:
        """Drop everything remembered (the generation moved)."""
        self._entries.clear()


def registration_cache(app: Flask | None = None) -> RegistrationCache:
    """The app's cache (one per process: each gunicorn worker builds its own app)."""
    from plugin.jobs import get_redis

    app = app or current_app
    cache: RegistrationCache | None = app.extensions.get(EXTENSION_KEY)
    if cache is None:
        cache = app.extensions[EXTENSION_KEY] = RegistrationCache(get_redis(app))
    return cache


def registrations_changed(session: Session) -> None:
    """Say that ``session``'s transaction changes registrations: bump the generation on commit.

    Call it from every service that adds, changes or removes a platform or deployment row.
    The bump happens after the real commit (so a launch that sees the new generation reads
    the new rows); a rollback drops it.
    """
    session.info[_PENDING] = True
    if not event.contains(session, "after_commit", _bump_after_commit):
        event.listen(session, "after_commit", _bump_after_commit)
        event.listen(session, "after_soft_rollback", _forget_after_rollback)


def _forget_after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)


def _bump_after_commit(session: Session) -> None:
    if session.in_nested_transaction() or not session.info.pop(_PENDING, False):
        return
    from plugin.jobs import get_redis

    if not has_app_context():
        # Services run inside the app (web, worker, CLI); without it there is no Redis to
        # tell. Remembered rows then age out within LOCAL_TTL.
        log.warning("lti.registrations_generation_not_bumped", error="no_app_context")
        return
    cache: RegistrationCache | None = current_app.extensions.get(EXTENSION_KEY)
    if cache is not None:
        cache.forget()
    try:
        get_redis().incr(GENERATION_KEY)
    except Exception as exc:  # noqa: BLE001 - committed; remembered rows age out in LOCAL_TTL
        log.warning("lti.registrations_generation_not_bumped", error=type(exc).__name__)
