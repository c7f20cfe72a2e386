"""Google Calendar through google-api-python-client, one built service per connection.

Idempotency: the event id is derived from the key, so a retried insert answers 409
duplicate, which we treat as done (fetching the event, and resurrecting it if it had been
cancelled: Google keeps deleted ids). Updates carry If-Match; a 412 refetches and
reapplies unless the calendar already holds a newer version of the meeting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httplib2
from google.auth.credentials import Credentials as BaseCredentials
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest

from plugin.calendars.credentials import CredentialsBox, CredentialsCallback
from plugin.calendars.errors import (
    CalendarError,
    ConflictError,
    EventGoneError,
    ProviderError,
    StaleVersionError,
)
from plugin.calendars.google.errors import classify_google_error
from plugin.calendars.google.ids import google_event_id
from plugin.calendars.google.oauth import GOOGLE_SCOPES
from plugin.calendars.google.resources import conference_url, event_body, remote_version
from plugin.calendars.protocol import BatchOutcome, Operation, OperationKind
from plugin.calendars.settings import CalendarSettings
from plugin.calendars.types import (
    BusyInterval,
    EventRef,
    EventResult,
    EventSpec,
    require_aware,
)

__all__ = ["GoogleCalendarProvider", "open_provider", "open_service_account_provider"]


class GoogleCalendarProvider:
    """One person's (or one delegated mailbox's) Google calendar."""

    kind = "google"
    #: Google accepts 1,000 calls per batch but advises staying at 50 or fewer.
    max_batch_size = 50

    def __init__(
        self,
        credentials: BaseCredentials,
        *,
        settings: CalendarSettings,
        calendar_id: str = "primary",
        box: CredentialsBox | None = None,
        num_retries: int = 0,
    ) -> None:
        self._credentials = credentials
        self._settings = settings
        self._calendar_id = calendar_id
        self._box = box
        self._num_retries = num_retries
        self._http = AuthorizedHttp(credentials, http=httplib2.Http(timeout=settings.http_timeout))
        # Building the service and its events() resource is costly (FIELD_NOTES): once.
        self._service = build(
            "calendar",
            "v3",
            http=self._http,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": settings.google_calendar_endpoint},
        )
        self._events = self._service.events()

    # --- plumbing ---------------------------------------------------------------------

    def _persist(self) -> None:
        """Hand a refreshed access token to the caller."""
        if self._box is None or not isinstance(self._credentials, user_credentials.Credentials):
            return
        expiry = self._credentials.expiry
        self._box.update(
            token=self._credentials.token,
            expiry=expiry.isoformat() if expiry is not None else None,
            refresh_token=self._credentials.refresh_token,
        )

    def _execute(self, request: HttpRequest) -> dict[str, Any]:
        try:
            result: dict[str, Any] | None = request.execute(num_retries=self._num_retries)
        except Exception as exc:
            error = classify_google_error(exc)
            if error is None:
                raise
            raise error from exc
        finally:
            self._persist()
        return result or {}

    def _result(self, key: str, data: Mapping[str, Any]) -> EventResult:
        return EventResult(
            key=key,
            external_id=str(data.get("id", google_event_id(key))),
            etag=data.get("etag"),
            conference_url=conference_url(data),
            version=remote_version(data),
        )

    def _insert_request(self, spec: EventSpec) -> HttpRequest:
        return self._events.insert(
            calendarId=self._calendar_id,
            body=event_body(spec),
            conferenceDataVersion=1,
            sendUpdates="none",
        )

    def _update_request(self, spec: EventSpec, etag: str | None) -> HttpRequest:
        request: HttpRequest = self._events.update(
            calendarId=self._calendar_id,
            eventId=google_event_id(spec.key),
            body=event_body(spec),
            conferenceDataVersion=1,
            sendUpdates="none",
        )
        if etag:
            request.headers["If-Match"] = etag
        return request

    def _delete_request(self, ref: EventRef) -> HttpRequest:
        return self._events.delete(
            calendarId=self._calendar_id,
            eventId=ref.external_id or google_event_id(ref.key),
            sendUpdates="none",
        )

    def _get(self, key: str) -> dict[str, Any]:
        return self._execute(
            self._events.get(calendarId=self._calendar_id, eventId=google_event_id(key))
        )

    # --- CalendarProvider -----------------------------------------------------------------

    def create_event(self, spec: EventSpec) -> EventResult:
        """Insert the event; a 409 duplicate means an earlier try made it: adopt that one."""
        try:
            return self._result(spec.key, self._execute(self._insert_request(spec)))
        except ConflictError as exc:
            if exc.status != 409:
                raise
        return self._adopt(spec)

    def _adopt(self, spec: EventSpec) -> EventResult:
        current = self._get(spec.key)
        if current.get("status") == "cancelled" or remote_version(current) < spec.version:
            # Cancelled earlier (Google keeps the id) or an older copy: bring it up to date.
            return self._put(spec, current.get("etag"))
        return self._result(spec.key, current)

    def _put(self, spec: EventSpec, etag: str | None) -> EventResult:
        return self._result(spec.key, self._execute(self._update_request(spec, etag)))

    def update_event(self, spec: EventSpec, ref: EventRef) -> EventResult:
        """Replace the event with ``spec`` if its etag still matches; on 412 reapply once."""
        try:
            return self._put(spec, ref.etag)
        except ConflictError as exc:
            if exc.status != 412:
                raise
        return self._reapply(spec)

    def _reapply(self, spec: EventSpec) -> EventResult:
        """After a 412: write ``spec`` over the current copy unless that copy is newer."""
        current = self._get(spec.key)
        remote = remote_version(current)
        if remote > spec.version:
            raise StaleVersionError(
                f"Google holds version {remote} of {spec.key}; not overwriting with {spec.version}",
                remote_version=remote,
            )
        return self._put(spec, current.get("etag"))

    def cancel_event(self, ref: EventRef) -> None:
        """Delete the event; 404 and 410 mean it is already gone, which is the goal."""
        try:
            self._execute(self._delete_request(ref))
        except EventGoneError:
            return

    def free_busy(
        self, start: datetime, end: datetime, calendars: Sequence[str] = ()
    ) -> dict[str, list[BusyInterval]]:
        """Busy intervals per calendar id from freeBusy (default: this connection's)."""
        require_aware(start, end)
        ids = list(calendars) or [self._calendar_id]
        body = {
            "timeMin": start.isoformat(),
            "timeMax": end.isoformat(),
            "items": [{"id": calendar} for calendar in ids],
        }
        data = self._execute(self._service.freebusy().query(body=body))
        out: dict[str, list[BusyInterval]] = {}
        for calendar, info in (data.get("calendars") or {}).items():
            if info.get("errors"):
                raise ProviderError(f"Google cannot give free/busy of {calendar}: {info['errors']}")
            out[calendar] = sorted(
                BusyInterval(
                    datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])
                )
                for item in info.get("busy", [])
            )
        return out

    def check_connection(self) -> None:
        """A one-minute freeBusy query: proves the grant, the scopes and the calendar."""
        now = datetime.now(UTC)
        self.free_busy(now, now + timedelta(minutes=1))

    def run_batch(self, operations: Sequence[Operation]) -> list[BatchOutcome]:
        """Run operations in batch requests; 409/412 follow-ups run one by one after."""
        outcomes: list[BatchOutcome] = []
        for offset in range(0, len(operations), self.max_batch_size):
            outcomes.extend(self._run_chunk(operations[offset : offset + self.max_batch_size]))
        return outcomes

    def _run_chunk(self, operations: Sequence[Operation]) -> list[BatchOutcome]:
        answers: dict[str, tuple[Any, BaseException | None]] = {}

        def collect(request_id: str, response: Any, exception: BaseException | None) -> None:
            answers[request_id] = (response, exception)

        batch = BatchHttpRequest(callback=collect, batch_uri=self._settings.google_batch_uri)
        for index, operation in enumerate(operations):
            batch.add(self._request_for(operation), request_id=str(index))
        try:
            batch.execute(http=self._http)
        except Exception as exc:
            error = classify_google_error(exc)
            if error is None:
                raise
            return [BatchOutcome(operation, error=error) for operation in operations]
        finally:
            self._persist()
        return [
            self._settle(operation, *answers.get(str(index), (None, None)))
            for index, operation in enumerate(operations)
        ]

    def _request_for(self, operation: Operation) -> HttpRequest:
        if operation.kind is OperationKind.CREATE:
            assert operation.spec is not None
            return self._insert_request(operation.spec)
        if operation.kind is OperationKind.UPDATE:
            assert operation.spec is not None
            assert operation.ref is not None
            return self._update_request(operation.spec, operation.ref.etag)
        assert operation.ref is not None
        return self._delete_request(operation.ref)

    def _settle(
        self, operation: Operation, response: Any, exception: BaseException | None
    ) -> BatchOutcome:
        if exception is None:
            if operation.kind is OperationKind.CANCEL:
                return BatchOutcome(operation)
            return BatchOutcome(operation, result=self._result(operation.key, response or {}))
        error = (
            classify_google_error(exception)
            if isinstance(exception, HttpError)
            else ProviderError(str(exception))
        )
        assert error is not None
        try:
            if operation.kind is OperationKind.CANCEL and isinstance(error, EventGoneError):
                return BatchOutcome(operation)
            if isinstance(error, ConflictError) and operation.spec is not None:
                if error.status == 409 and operation.kind is OperationKind.CREATE:
                    return BatchOutcome(operation, result=self._adopt(operation.spec))
                if error.status == 412 and operation.kind is OperationKind.UPDATE:
                    return BatchOutcome(operation, result=self._reapply(operation.spec))
        except CalendarError as follow_up:
            return BatchOutcome(operation, error=follow_up)
        return BatchOutcome(operation, error=error)

    def close(self) -> None:
        self._service.close()

    def __enter__(self) -> GoogleCalendarProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def user_credentials_from(
    data: Mapping[str, Any], settings: CalendarSettings, scopes: Sequence[str] = GOOGLE_SCOPES
) -> user_credentials.Credentials:
    """google-auth user credentials from a stored dict (token, refresh_token, expiry)."""
    expiry = data.get("expiry")
    credentials = user_credentials.Credentials(  # type: ignore[no-untyped-call]
        token=data.get("token"),
        refresh_token=data.get("refresh_token"),
        token_uri=settings.google_token_uri,
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret,
        scopes=list(data.get("scopes") or scopes),
    )
    if expiry:
        parsed = datetime.fromisoformat(str(expiry))
        if parsed.tzinfo is not None:  # google-auth compares against naive UTC
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        credentials.expiry = parsed
    return credentials


def open_provider(
    credentials: Mapping[str, Any],
    *,
    settings: CalendarSettings,
    on_credentials_change: CredentialsCallback | None = None,
    calendar_id: str | None = None,
    num_retries: int = 0,
) -> GoogleCalendarProvider:
    """A provider for a person who connected their Google account (OAuth web flow).

    Credentials with ``mode="service_account"`` (``service_account``: the key's JSON,
    ``subject``: the person's address) act through the institution's domain-wide-delegated
    service account instead (:func:`open_service_account_provider`).
    """
    if credentials.get("mode") == "service_account":
        return open_service_account_provider(
            credentials["service_account"], str(credentials["subject"]), settings=settings
        )
    box = CredentialsBox(credentials, on_credentials_change)
    return GoogleCalendarProvider(
        user_credentials_from(credentials, settings),
        settings=settings,
        calendar_id=calendar_id or str(credentials.get("calendar_id", "primary")),
        box=box,
        num_retries=num_retries,
    )


def open_service_account_provider(
    service_account_info: Mapping[str, Any],
    subject: str,
    *,
    settings: CalendarSettings,
) -> GoogleCalendarProvider:
    """Act on ``subject``'s primary calendar with a domain-wide-delegated service account.

    The institution option: a Workspace admin grants the service account the calendar
    scopes once, and nobody connects one by one. The key is the admin's secret; keep it
    encrypted like any credential.
    """
    credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        dict(service_account_info), scopes=list(GOOGLE_SCOPES), subject=subject
    ).with_token_uri(settings.google_token_uri)
    return GoogleCalendarProvider(credentials, settings=settings, calendar_id=subject)
