"""CalDAV calendars (Apple, Fastmail, Nextcloud, on-premises) through the caldav package.

Each event is stored at ``{calendar}/{key}.ics`` with UID = key, so the resource URL is
known before the first PUT and a retried PUT lands on the same resource. Creates send
``If-None-Match: *`` so they never clobber a newer copy; updates send ``If-Match``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote

import requests
from caldav.collection import Calendar as DAVCalendar
from caldav.davclient import DAVClient
from caldav.lib import error as caldav_error
from icalendar import Calendar

from plugin.calendars.credentials import CredentialsCallback
from plugin.calendars.errors import (
    AuthRevokedError,
    ConflictError,
    EventGoneError,
    ProviderError,
    RateLimitedError,
    StaleVersionError,
    TransientError,
    parse_retry_after,
)
from plugin.calendars.ics.events import caldav_resource
from plugin.calendars.settings import CalendarSettings
from plugin.calendars.types import BusyInterval, EventRef, EventResult, EventSpec, require_aware

__all__ = ["CalDAVProvider", "open_provider"]

ICS_TYPE = {"Content-Type": "text/calendar; charset=utf-8"}


def _sequence(ical: str) -> int:
    for component in Calendar.from_ical(ical).walk("VEVENT"):
        return int(component.get("SEQUENCE", 0))
    return -1


class CalDAVProvider:
    """One CalDAV calendar collection."""

    kind = "caldav"

    def __init__(self, client: DAVClient, calendar_url: str) -> None:
        self._client = client
        self._calendar_url = calendar_url.rstrip("/") + "/"

    def _url(self, key: str) -> str:
        return f"{self._calendar_url}{quote(key, safe='')}.ics"

    def _call(
        self, method: str, url: str, body: str = "", headers: Mapping[str, str] | None = None
    ) -> Any:
        try:
            response = self._client.request(url, method, body, dict(headers or {}))
        except caldav_error.RateLimitError as exc:
            raise RateLimitedError(
                f"the CalDAV server asks us to slow down ({exc.status})",
                retry_after=exc.retry_after_seconds or parse_retry_after(exc.retry_after),
                status=exc.status,
            ) from exc
        except caldav_error.AuthorizationError as exc:
            raise AuthRevokedError(
                f"the CalDAV server refused our credentials: {exc}", status=401
            ) from exc
        except (requests.RequestException, OSError) as exc:
            raise TransientError(f"cannot reach the CalDAV server: {exc}") from exc
        status = int(response.status)
        if status >= 500:
            raise TransientError(f"the CalDAV server answered {status}", status=status)
        if status in (404, 410):
            raise EventGoneError(f"no CalDAV resource at {url}", status=status)
        if status in (409, 412):
            raise ConflictError(f"the CalDAV server answered {status} for {url}", status=status)
        if status >= 400:
            raise ProviderError(f"the CalDAV server answered {status} for {url}", status=status)
        return response

    def _put(self, spec: EventSpec, headers: Mapping[str, str]) -> EventResult:
        url = self._url(spec.key)
        response = self._call("PUT", url, caldav_resource(spec), {**ICS_TYPE, **headers})
        etag = response.headers.get("ETag")
        return EventResult(key=spec.key, external_id=url, etag=etag, version=spec.version)

    def _get(self, key: str) -> tuple[str, str | None]:
        response = self._call("GET", self._url(key))
        return response.raw, response.headers.get("ETag")

    def create_event(self, spec: EventSpec) -> EventResult:
        """PUT if absent; when the resource exists (a lost answer), adopt or update it."""
        try:
            return self._put(spec, {"If-None-Match": "*"})
        except ConflictError as exc:
            if exc.status != 412:
                raise
        return self._reapply(spec)

    def update_event(self, spec: EventSpec, ref: EventRef) -> EventResult:
        """PUT with If-Match; on 412 refetch and reapply unless a newer SEQUENCE is there."""
        try:
            return self._put(spec, {"If-Match": ref.etag} if ref.etag else {})
        except ConflictError as exc:
            if exc.status != 412:
                raise
        return self._reapply(spec)

    def _reapply(self, spec: EventSpec) -> EventResult:
        ical, etag = self._get(spec.key)
        remote = _sequence(ical)
        if remote > spec.version:
            raise StaleVersionError(
                f"the CalDAV calendar holds version {remote} of {spec.key}", remote_version=remote
            )
        if remote == spec.version:
            return EventResult(spec.key, self._url(spec.key), etag, version=remote)
        return self._put(spec, {"If-Match": etag} if etag else {})

    def cancel_event(self, ref: EventRef) -> None:
        """DELETE the resource; already gone counts as done."""
        try:
            self._call("DELETE", ref.external_id or self._url(ref.key))
        except EventGoneError:
            return

    def free_busy(
        self, start: datetime, end: datetime, calendars: Sequence[str] = ()
    ) -> dict[str, list[BusyInterval]]:
        """Busy intervals of this calendar from a calendar-query (time-range) REPORT."""
        require_aware(start, end)
        calendar = DAVCalendar(client=self._client, url=self._calendar_url)
        try:
            found: list[Any] = calendar.search(  # type: ignore[assignment]  # sync client
                start=start, end=end, event=True, expand=False
            )
        except caldav_error.DAVError as exc:
            raise ProviderError(f"the CalDAV server refused the free/busy search: {exc}") from exc
        busy = []
        for item in found:
            for component in Calendar.from_ical(item.data).walk("VEVENT"):
                if str(component.get("TRANSP", "OPAQUE")) == "TRANSPARENT":
                    continue
                if str(component.get("STATUS", "CONFIRMED")) == "CANCELLED":
                    continue
                start, end = component.decoded("DTSTART"), component.decoded("DTEND")
                busy.append(BusyInterval(_utc(start), _utc(end)))
        return {self._calendar_url: sorted(busy)}

    def check_connection(self) -> None:
        """PROPFIND the calendar collection: proves the URL and the app password.

        A calendar that no longer exists needs the person to reconnect, like a revoked
        password, so it raises AuthRevokedError too.
        """
        try:
            self._propfind()
        except EventGoneError as exc:
            raise AuthRevokedError(
                f"the CalDAV calendar {self._calendar_url} no longer exists; reconnect it",
                status=exc.status,
                reason="calendar_gone",
            ) from exc

    def _propfind(self) -> None:
        self._call(
            "PROPFIND",
            self._calendar_url,
            '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/>'
            "</d:prop></d:propfind>",
            {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CalDAVProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _utc(value: date | datetime) -> datetime:
    if not isinstance(value, datetime):  # an all-day event blocks the whole (UTC) day
        return datetime.combine(value, time(0), tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def open_provider(
    credentials: Mapping[str, Any],
    *,
    settings: CalendarSettings,
    on_credentials_change: CredentialsCallback | None = None,
) -> CalDAVProvider:
    """A provider for ``{"calendar_url", "username", "password"}`` (an app password)."""
    del on_credentials_change  # CalDAV credentials never change on their own
    url = credentials.get("calendar_url")
    if not url:
        raise ProviderError("a CalDAV connection needs calendar_url")
    client = DAVClient(
        url=str(url),
        username=credentials.get("username"),
        password=credentials.get("password"),
        timeout=int(settings.http_timeout),
        rate_limit_handle=False,
    )
    return CalDAVProvider(client, str(url))
