"""Outlook calendars through Microsoft Graph over HTTP (requests), tokens from MSAL.

Idempotency: every create carries ``transactionId`` = the key, so Graph answers a
retried POST with the event it already made. Updates PATCH with If-Match; a 412
refetches and reapplies unless the calendar holds a newer version (kept in a
single-value extended property). JSON ``$batch`` takes 20 requests; a 429 can come back
inside a 200 batch answer, per item, with its own Retry-After.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from plugin.calendars.credentials import CredentialsBox, CredentialsCallback
from plugin.calendars.errors import (
    CalendarError,
    ConflictError,
    EventGoneError,
    ProviderError,
    StaleVersionError,
    TransientError,
)
from plugin.calendars.microsoft.auth import MsalTokenSource
from plugin.calendars.microsoft.resources import (
    GRAPH_BATCH_LIMIT,
    PREFER_UTC,
    VERSION_PROPERTY,
    classify_graph_response,
    graph_event_body,
    graph_time,
    parse_graph_time,
    remote_version,
)
from plugin.calendars.protocol import BatchOutcome, Operation, OperationKind
from plugin.calendars.settings import CalendarSettings
from plugin.calendars.types import (
    BusyInterval,
    EventRef,
    EventResult,
    EventSpec,
    require_aware,
)

__all__ = ["GraphCalendarProvider", "open_provider"]

#: scheduleItem statuses that leave the person free (Graph counts working elsewhere as free
#: in availabilityView too); tentative, busy, out of office and unknown block a slot.
FREE_STATUSES = frozenset({"free", "workingelsewhere"})


class GraphCalendarProvider:
    """One Outlook calendar: the signed-in person's (/me) or a mailbox (/users/{id})."""

    kind = "microsoft"
    max_batch_size = GRAPH_BATCH_LIMIT

    def __init__(
        self,
        tokens: MsalTokenSource,
        *,
        settings: CalendarSettings,
        user: str | None = None,
        schedule_id: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._tokens = tokens
        self._timeout = settings.http_timeout
        self._root = settings.microsoft_graph_root.rstrip("/")
        self._prefix = "/me" if user is None else f"/users/{quote(user)}"
        self._schedule_id = schedule_id or user
        self._session = session or requests.Session()

    # --- plumbing -------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """One Graph request; a 401 refreshes the token once and retries."""
        for attempt in range(2):
            token = self._tokens.token(force_refresh=attempt > 0)
            try:
                response = self._session.request(
                    method,
                    f"{self._root}{path}",
                    json=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Prefer": PREFER_UTC,
                        **(headers or {}),
                    },
                    timeout=self._timeout,
                )
            except requests.RequestException as exc:
                raise TransientError(f"cannot reach Microsoft Graph: {exc}") from exc
            if response.status_code != 401:
                return response
        return response

    def _json(self, response: requests.Response) -> dict[str, Any]:
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {}
        if response.status_code >= 400:
            raise classify_graph_response(response.status_code, data, response.headers)
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _result(key: str, data: Mapping[str, Any]) -> EventResult:
        meeting = data.get("onlineMeeting") or {}
        return EventResult(
            key=key,
            external_id=str(data["id"]),
            etag=data.get("@odata.etag"),
            conference_url=meeting.get("joinUrl"),
            version=remote_version(data),
        )

    def _event_path(self, external_id: str) -> str:
        return f"{self._prefix}/events/{quote(external_id, safe='')}"

    def _get(self, external_id: str) -> dict[str, Any]:
        expand = f"?$expand=singleValueExtendedProperties($filter=id eq '{VERSION_PROPERTY}')"
        return self._json(self._send("GET", self._event_path(external_id) + expand))

    # --- CalendarProvider -----------------------------------------------------------------

    def create_event(self, spec: EventSpec) -> EventResult:
        """POST with transactionId; Graph answers a retry with the event it made first."""
        data = self._json(
            self._send(
                "POST", f"{self._prefix}/calendar/events", graph_event_body(spec, create=True)
            )
        )
        result = self._result(spec.key, data)
        if result.version is not None and 0 <= result.version < spec.version:
            # An older create with this key made it first: bring it up to date.
            return self.update_event(spec, result.ref())
        return result

    def update_event(self, spec: EventSpec, ref: EventRef) -> EventResult:
        """PATCH with If-Match; on 412 refetch and reapply unless a newer version is there."""
        external_id = ref.external_id or self._find(spec.key)
        if external_id is None:
            raise EventGoneError(f"no Outlook event has transactionId {spec.key}", status=404)
        try:
            return self._patch(spec, external_id, ref.etag)
        except ConflictError as exc:
            if exc.status != 412:
                raise
        return self._reapply(spec, external_id)

    def _reapply(self, spec: EventSpec, external_id: str) -> EventResult:
        """After a 412: write ``spec`` over the current copy unless that copy is newer."""
        current = self._get(external_id)
        remote = remote_version(current)
        if remote > spec.version:
            raise StaleVersionError(
                f"Outlook holds version {remote} of {spec.key}; not overwriting with "
                f"{spec.version}",
                remote_version=remote,
            )
        return self._patch(spec, external_id, current.get("@odata.etag"))

    def _patch(self, spec: EventSpec, external_id: str, etag: str | None) -> EventResult:
        headers = {"If-Match": etag} if etag else {}
        body = graph_event_body(spec, create=False)
        response = self._send("PATCH", self._event_path(external_id), body, headers)
        return self._result(spec.key, self._json(response))

    def cancel_event(self, ref: EventRef) -> None:
        """DELETE the event; already gone (404/410) counts as done."""
        external_id = ref.external_id or self._find(ref.key)
        if external_id is None:
            return
        try:
            self._json(self._send("DELETE", self._event_path(external_id)))
        except EventGoneError:
            return

    def _find(self, key: str) -> str | None:
        """The id of the event created with transactionId ``key`` (when its id was lost)."""
        query = f"?$filter=transactionId eq '{key}'&$select=id"
        data = self._json(self._send("GET", f"{self._prefix}/events{query}"))
        found = data.get("value") or []
        return str(found[0]["id"]) if found else None

    def free_busy(
        self, start: datetime, end: datetime, calendars: Sequence[str] = ()
    ) -> dict[str, list[BusyInterval]]:
        """Busy intervals per mailbox from getSchedule (default: this connection's)."""
        require_aware(start, end)
        schedules = list(calendars) or ([self._schedule_id] if self._schedule_id else [])
        if not schedules:
            raise ProviderError("getSchedule needs a mailbox address; none is known")
        body = {
            "schedules": schedules,
            "startTime": graph_time(start),
            "endTime": graph_time(end),
            "availabilityViewInterval": 15,
        }
        data = self._json(self._send("POST", f"{self._prefix}/calendar/getSchedule", body))
        out: dict[str, list[BusyInterval]] = {}
        for schedule in data.get("value", []):
            if schedule.get("error"):
                raise ProviderError(
                    f"no free/busy for {schedule.get('scheduleId')}: "
                    f"{schedule['error'].get('message', '')}"
                )
            out[schedule["scheduleId"]] = sorted(
                BusyInterval(parse_graph_time(item["start"]), parse_graph_time(item["end"]))
                for item in schedule.get("scheduleItems", [])
                if str(item.get("status", "busy")).lower() not in FREE_STATUSES
            )
        return out

    def check_connection(self) -> None:
        """Read the default calendar's id: proves the token, the consent and the mailbox."""
        self._json(self._send("GET", f"{self._prefix}/calendar?$select=id"))

    # --- batch ----------------------------------------------------------------------------

    def run_batch(self, operations: Sequence[Operation]) -> list[BatchOutcome]:
        """Run operations through $batch, 20 at a time; per-item errors become outcomes."""
        outcomes: list[BatchOutcome] = []
        for offset in range(0, len(operations), GRAPH_BATCH_LIMIT):
            outcomes.extend(self._run_chunk(operations[offset : offset + GRAPH_BATCH_LIMIT]))
        return outcomes

    def _batch_request(self, index: int, operation: Operation) -> dict[str, Any] | None:
        item: dict[str, Any] = {"id": str(index), "headers": {"Content-Type": "application/json"}}
        if operation.kind is OperationKind.CREATE:
            assert operation.spec is not None
            item.update(
                method="POST",
                url=f"{self._prefix}/calendar/events",
                body=graph_event_body(operation.spec, create=True),
            )
            return item
        assert operation.ref is not None
        if not operation.ref.external_id:
            return None  # needs a lookup first; done one by one
        if operation.kind is OperationKind.UPDATE:
            assert operation.spec is not None
            item.update(
                method="PATCH",
                url=self._event_path(operation.ref.external_id),
                body=graph_event_body(operation.spec, create=False),
            )
            if operation.ref.etag:
                item["headers"]["If-Match"] = operation.ref.etag
            return item
        item.update(method="DELETE", url=self._event_path(operation.ref.external_id))
        return item

    def _run_chunk(self, operations: Sequence[Operation]) -> list[BatchOutcome]:
        requests_ = [self._batch_request(i, op) for i, op in enumerate(operations)]
        batched = [r for r in requests_ if r is not None]
        answers: dict[str, dict[str, Any]] = {}
        if batched:
            try:
                data = self._json(self._send("POST", "/$batch", {"requests": batched}))
            except CalendarError as exc:
                return [BatchOutcome(op, error=exc) for op in operations]
            answers = {str(item.get("id")): item for item in data.get("responses", [])}
        outcomes = []
        for index, operation in enumerate(operations):
            if requests_[index] is None:
                outcomes.append(self._one_by_one(operation))
                continue
            answer = answers.get(str(index))
            if answer is None:
                outcomes.append(
                    BatchOutcome(
                        operation,
                        error=TransientError("Graph's $batch answer left this request out"),
                    )
                )
                continue
            outcomes.append(self._settle(operation, answer))
        return outcomes

    def _one_by_one(self, operation: Operation) -> BatchOutcome:
        from plugin.calendars.protocol import apply_operation

        try:
            return BatchOutcome(operation, result=apply_operation(self, operation))
        except CalendarError as exc:
            return BatchOutcome(operation, error=exc)

    def _settle(self, operation: Operation, answer: Mapping[str, Any]) -> BatchOutcome:
        status = int(answer.get("status", 500))
        body = answer.get("body") if isinstance(answer.get("body"), dict) else {}
        if status < 300:
            if operation.kind is OperationKind.CANCEL:
                return BatchOutcome(operation)
            result = self._result(operation.key, body or {})
            assert operation.spec is not None
            if result.version is not None and 0 <= result.version < operation.spec.version:
                return self._one_by_one(Operation.update(operation.spec, result.ref()))
            return BatchOutcome(operation, result=result)
        error = classify_graph_response(status, body, answer.get("headers") or {})
        if operation.kind is OperationKind.CANCEL and isinstance(error, EventGoneError):
            return BatchOutcome(operation)
        if (
            isinstance(error, ConflictError)
            and error.status == 412
            and operation.kind is OperationKind.UPDATE
            and operation.spec is not None
            and operation.ref is not None
            and operation.ref.external_id
        ):
            try:
                result = self._reapply(operation.spec, operation.ref.external_id)
            except CalendarError as follow_up:
                return BatchOutcome(operation, error=follow_up)
            return BatchOutcome(operation, result=result)
        return BatchOutcome(operation, error=error)

    def close(self) -> None:
        self._session.close()
        self._tokens.close()

    def __enter__(self) -> GraphCalendarProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_provider(
    credentials: Mapping[str, Any],
    *,
    settings: CalendarSettings,
    on_credentials_change: CredentialsCallback | None = None,
    http_client: Any = None,
    http_cache: MutableMapping[str, Any] | None = None,
    session: requests.Session | None = None,
) -> GraphCalendarProvider:
    """A provider for a connection: ``{"mode": "delegated", "cache", "home_account_id",
    "username"}`` from :func:`finish_auth_flow`, or ``{"mode": "application", "user":
    "upn-or-id"}`` for the institution's app-only access."""
    box = CredentialsBox(credentials, on_credentials_change)
    user = credentials.get("user")
    if credentials.get("mode", "delegated") != "delegated" and not user:
        raise ProviderError("an application-mode Microsoft connection needs a 'user' mailbox")
    tokens = MsalTokenSource(settings, box, http_client=http_client, http_cache=http_cache)
    try:
        if tokens.delegated:
            return GraphCalendarProvider(
                tokens, settings=settings, schedule_id=credentials.get("username"), session=session
            )
        return GraphCalendarProvider(tokens, settings=settings, user=str(user), session=session)
    except BaseException:
        tokens.close()  # its HTTP session would otherwise wait for the garbage collector
        raise
