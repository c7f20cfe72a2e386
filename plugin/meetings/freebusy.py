"""Free/busy from people's connected calendars, for suggested meeting times.

It is read while a page renders, so it must never break or stall that page. Each person
with a live connection is asked once, all of them in parallel, with a short deadline
(``PRECEPTOR_FREEBUSY_TIMEOUT``); answers are cached in Redis per connection for a short
while (``PRECEPTOR_FREEBUSY_CACHE_SECONDS``) so re-rendering the page asks nobody again. A
person whose calendar fails, refuses or is slow is left out: their declared availability
still counts, the page says their calendar was not checked, and the failure is remembered
briefly so the next render does not wait again.

Privacy: providers hand back start/end pairs only; titles never reach this module, the
cache or the other person's page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from flask import current_app
from redis import Redis, RedisError
from sqlalchemy.orm import Session

from plugin.jobs import JobError, get_redis
from plugin.logs import get_logger
from plugin.meetings.providers import (
    BusyAnswer,
    BusyProvider,
    ConnectionContext,
    ConnectionFailing,
    ConnectionRevoked,
    EventProvider,
    ProviderUnavailable,
    get_provider,
)
from plugin.meetings.sync import live_connection
from plugin.meetings.times import Interval, merge
from plugin.models import ICS_PROVIDER, CalendarConnection, Participant

__all__ = ["CACHE_KEY", "CalendarBusy", "calendar_busy"]

log = get_logger(__name__)

#: Redis key of one connection's cached free/busy (a new connection starts afresh).
CACHE_KEY: Final = "preceptor:freebusy:{connection_id}"
#: How long a failure is remembered, unless the service asked for longer (Retry-After),
#: and at most how long that may be: the person should see their calendar again soon.
FAILURE_SECONDS: Final = 30
MAX_FAILURE_SECONDS: Final = 600


@dataclass
class CalendarBusy:
    """Busy intervals from connected calendars, and whose calendar could not be checked."""

    intervals: list[Interval] = field(default_factory=list)
    #: People whose connected calendar was read (live or from the cache).
    checked: list[Participant] = field(default_factory=list)
    #: People with a connected calendar that could not be read just now.
    unavailable: list[Participant] = field(default_factory=list)
    #: Provider requests made (0 when everything came from the cache).
    requests: int = 0


def _settings() -> tuple[float, int]:
    from plugin import get_settings

    settings = get_settings(current_app)
    return settings.freebusy_timeout, settings.freebusy_cache_seconds


def _window(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The span actually asked for: whole hours to the next midnight, so a page rendered a
    few minutes later is served by the same cached answer."""
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = (until.astimezone(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return start, end


def _cached(redis: Redis | None, connection_id: int) -> dict[str, object] | None:
    if redis is None:
        return None
    try:
        raw = redis.get(CACHE_KEY.format(connection_id=connection_id))
    except RedisError:
        return None  # no cache is slower, not broken
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _store(redis: Redis | None, connection_id: int, data: dict[str, object], seconds: int) -> None:
    if redis is None or seconds <= 0:
        return
    try:
        redis.set(CACHE_KEY.format(connection_id=connection_id), json.dumps(data), ex=seconds)
    except RedisError:
        return


def _covers(data: dict[str, object], start: datetime, end: datetime) -> bool:
    try:
        return (
            datetime.fromisoformat(str(data["start"])) <= start
            and datetime.fromisoformat(str(data["end"])) >= end
        )
    except (KeyError, ValueError):
        return False


def _intervals(data: dict[str, object], since: datetime, until: datetime) -> list[Interval]:
    spans = data.get("busy")
    out = []
    for pair in spans if isinstance(spans, list) else []:
        start, end = datetime.fromisoformat(pair[0]), datetime.fromisoformat(pair[1])
        if start < until and end > since:
            out.append(Interval(start, end))
    return out


def _redis() -> Redis | None:
    try:
        return get_redis()
    except (RedisError, JobError):
        return None


def calendar_busy(
    session: Session,
    people: Sequence[Participant],
    *,
    since: datetime,
    until: datetime,
    timeout: float | None = None,
    cache_seconds: int | None = None,
    providers: Callable[[str], EventProvider] = get_provider,
) -> CalendarBusy:
    """Busy intervals of ``people``'s connected calendars overlapping ``[since, until)``.

    Never raises for a provider's failure: that person lands in ``unavailable``. Refreshed
    credentials are set on their connection in ``session`` (the caller commits, or not:
    a token not stored is refreshed again next time).
    """
    configured_timeout, configured_cache = _settings()
    timeout = configured_timeout if timeout is None else timeout
    cache_seconds = configured_cache if cache_seconds is None else cache_seconds
    start, end = _window(since, until)
    redis = _redis()
    result = CalendarBusy()
    todo: list[tuple[Participant, CalendarConnection, BusyProvider]] = []
    for person in people:
        connection = live_connection(session, person)
        if connection is None or connection.provider == ICS_PROVIDER:
            continue
        cached = _cached(redis, connection.id)
        if cached is not None and cached.get("failed"):
            result.unavailable.append(person)
            continue
        if cached is not None and _covers(cached, start, end):
            result.checked.append(person)
            result.intervals.extend(_intervals(cached, since, until))
            continue
        try:
            provider = providers(connection.provider)
        except ProviderUnavailable:
            continue  # nothing installed to ask: declared availability, as without one
        if not isinstance(provider, BusyProvider):
            continue
        todo.append((person, connection, provider))
    if todo:
        _ask(todo, start, end, timeout, cache_seconds, redis, result)
    result.intervals = merge([i for i in result.intervals if i.start < until and i.end > since])
    return result


def _ask(
    todo: list[tuple[Participant, CalendarConnection, BusyProvider]],
    start: datetime,
    end: datetime,
    timeout: float,
    cache_seconds: int,
    redis: Redis | None,
    result: CalendarBusy,
) -> None:
    """Ask every provider at once; whoever has not answered by the deadline is left out."""
    executor = ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="freebusy")
    futures: dict[Future[BusyAnswer], tuple[Participant, CalendarConnection]] = {}
    for person, connection, provider in todo:
        # Built here, not in the thread: the session and its decrypted columns stay here.
        context = ConnectionContext(
            connection_id=connection.id,
            provider=connection.provider,
            account=connection.account,
            credentials=connection.credentials,
        )
        future = executor.submit(provider.busy_intervals, context, start, end, timeout=timeout)
        futures[future] = (person, connection)
    result.requests += len(futures)
    # The per-request timeout bounds each call; this bounds token refresh plus request.
    done, _ = wait(futures, timeout=timeout * 2)
    executor.shutdown(wait=False, cancel_futures=True)
    for future, (person, connection) in futures.items():
        retry_after: float | None = None
        if future not in done:
            error = "did not answer in time"
        else:
            try:
                answer = future.result()
            except ConnectionRevoked as exc:
                error = "refused (the connection was revoked)"
                if exc.credentials is not None:
                    connection.credentials = exc.credentials
            except ConnectionFailing as exc:
                error, retry_after = "failed", exc.retry_after
                if exc.credentials is not None:
                    connection.credentials = exc.credentials
            except Exception as exc:  # noqa: BLE001 - a page must render whatever happens
                # Its type only: a provider's message may carry an address or a payload.
                error = f"failed unexpectedly ({type(exc).__name__})"
            else:
                if answer.credentials is not None:
                    connection.credentials = answer.credentials
                spans = [(s.astimezone(UTC), e.astimezone(UTC)) for s, e in answer.intervals]
                _store(
                    redis,
                    connection.id,
                    {
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "busy": [[s.isoformat(), e.isoformat()] for s, e in spans],
                    },
                    cache_seconds,
                )
                result.checked.append(person)
                result.intervals.extend(Interval(s, e) for s, e in spans)
                continue
        # Ids and a fixed phrase only: no names, addresses or provider payloads in logs.
        log.warning(
            "freebusy.unavailable",
            connection_id=connection.id,
            provider=connection.provider,
            reason=error,
        )
        result.unavailable.append(person)
        remember = max(FAILURE_SECONDS, int(retry_after or 0))
        _store(redis, connection.id, {"failed": True}, min(remember, MAX_FAILURE_SECONDS))
