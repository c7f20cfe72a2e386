"""A fake Microsoft identity platform (for MSAL) and Microsoft Graph calendar API.

MSAL insists on an https authority, so tests configure ``https://login.fake.test/<tenant>``
and hand MSAL a :class:`LoopbackSession` that sends that host to this server. Graph is
served at ``http://127.0.0.1:PORT/v1.0``. Answers follow Graph's documented shapes:
``{"error": {"code", "message"}}`` bodies, ``@odata.etag``, JSON ``$batch`` with
per-item status, headers (Retry-After) and body.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
from werkzeug.wrappers import Request, Response

from tests.fakes.faults import Fault, FaultPlan

AUTHORITY_HOST = "login.fake.test"
TENANT = "11111111-2222-3333-4444-555555555555"
ERRORS = {
    400: ("BadRequest", "The request is malformed."),
    401: ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    403: ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    404: ("ErrorItemNotFound", "The specified object was not found in the store."),
    409: ("ErrorIrresolvableConflict", "The item has been modified."),
    410: ("ErrorItemNotFound", "The specified object was not found in the store."),
    412: (
        "ErrorIrresolvableConflict",
        "The send or update operation could not be performed because the change key passed "
        "in the request does not match the current change key for the item.",
    ),
    429: ("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    500: ("generalException", "An unspecified error has occurred."),
    503: ("ServiceNotAvailable", "The service is temporarily unavailable."),
}
EVENT_FIELDS = frozenset(
    {
        "subject",
        "body",
        "start",
        "end",
        "location",
        "showAs",
        "isReminderOn",
        "singleValueExtendedProperties",
        "transactionId",
        "isOnlineMeeting",
        "onlineMeetingProvider",
        "attendees",
        "categories",
        "sensitivity",
        "importance",
        "reminderMinutesBeforeStart",
        "allowNewTimeProposals",
        "responseRequested",
    }
)


#: availabilityView digits per free/busy status (working elsewhere shows as free).
AVAILABILITY_DIGITS = {"free": 0, "workingElsewhere": 0, "tentative": 1, "busy": 2, "oof": 3}


def _minutes(count: int) -> timedelta:
    return timedelta(minutes=count)


def graph_error(status: int, code: str = "", headers: dict[str, str] | None = None) -> Response:
    default_code, message = ERRORS.get(status, ("UnknownError", "Error"))
    body = {
        "error": {
            "code": code or default_code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": secrets.token_hex(16),
            },
        }
    }
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(data), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _parse_time(value: dict[str, str]) -> datetime:
    if value.get("timeZone") != "UTC":
        raise ValueError("the fake stores UTC only")
    text = value["dateTime"]
    if "." in text:
        whole, fraction = text.split(".", 1)
        text = f"{whole}.{fraction[:6]}"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


#: Every LoopbackSession not yet collected: MSAL keeps the sessions it is given in
#: reference cycles, so an unclosed one is freed at a random later garbage collection and
#: its pooled socket warns in whichever test runs then. ``close_loopback_sessions`` (an
#: autouse fixture) closes them at the end of each test instead.
_SESSIONS: weakref.WeakSet[LoopbackSession] = weakref.WeakSet()


def close_loopback_sessions() -> None:
    for session in list(_SESSIONS):
        session.close()


class LoopbackSession(requests.Session):
    """A requests session that sends the fake authority's https host to the loopback fake."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self._port = port
        _SESSIONS.add(self)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(str(url))
        if parts.hostname == AUTHORITY_HOST:
            url = urlunsplit(("http", f"127.0.0.1:{self._port}", *parts[2:]))
        return super().request(str(method), str(url), *args, **kwargs)


class FakeGraph:
    """The fake identity platform + Graph calendars (a WSGI app)."""

    def __init__(self, access_token_lifetime: int = 3600) -> None:
        self._lock = threading.RLock()
        self.faults = FaultPlan()
        self.access_token_lifetime = access_token_lifetime
        #: (mailbox, event id) -> event resource (deleted events are removed, as in Exchange).
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self._access: dict[str, tuple[str, float]] = {}  # token -> (mailbox or "app", expiry)
        self._refresh: dict[str, str] = {}  # refresh token -> mailbox
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (mailbox, nonce)
        self._changes = itertools.count(1)

    @property
    def counts(self) -> Any:
        """Requests seen: "http", "api" (operations, batch items included), "batch",
        "token", and per operation ("insert", "update", "delete", "get", ...)."""
        return self.faults.counts

    @property
    def latency(self) -> float:
        """Seconds each HTTP request waits before it is answered (for benchmarks)."""
        return self.faults.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.faults.latency = seconds

    @property
    def authority(self) -> str:
        return f"https://{AUTHORITY_HOST}/{TENANT}"

    # --- control from tests -----------------------------------------------------------

    def authorize(self, auth_uri: str, mailbox: str = "mentor@example.edu") -> dict[str, str]:
        """Play the person signing in at ``auth_uri``: the callback's query parameters."""
        query = dict(
            item.split("=", 1) for item in urlsplit(auth_uri).query.split("&") if "=" in item
        )
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = (mailbox, unquote(query.get("nonce", "")))
        return {"code": code, "state": unquote(query["state"])}

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._access.clear()

    def revoke(self, mailbox: str) -> None:
        """The person (or an admin) revoked our grant: refresh answers invalid_grant."""
        with self._lock:
            self._refresh = {t: m for t, m in self._refresh.items() if m != mailbox}
            self._access = {t: v for t, v in self._access.items() if v[0] != mailbox}

    def add_event(
        self,
        mailbox: str,
        start: datetime,
        end: datetime,
        subject: str = "Private appointment",
        *,
        show_as: str = "busy",
        sensitivity: str = "normal",
    ) -> dict[str, Any]:
        """An event the person made themselves (not through Preceptor), for getSchedule."""
        event_id = "AAMkAG" + _b64(secrets.token_bytes(24))
        event = {
            "id": event_id,
            "subject": subject,
            "start": _graph_time(start.astimezone(UTC)),
            "end": _graph_time(end.astimezone(UTC)),
            "showAs": show_as,
            "sensitivity": sensitivity,
            "location": {"displayName": "Room 4"},
        }
        with self._lock:
            self._stamp(event)
            self.events[(mailbox, event_id)] = event
        return event

    def live_events(self, mailbox: str = "mentor@example.edu") -> list[dict[str, Any]]:
        with self._lock:
            return [event for (owner, _), event in self.events.items() if owner == mailbox]

    # --- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.faults.wait()
        self.faults.count("http")
        path = request.path
        if path.endswith("/v2.0/.well-known/openid-configuration"):
            self.faults.count("openid-configuration")
            response = self._openid_configuration()
        elif path.endswith("/oauth2/v2.0/token"):
            response = self._token(request)
        elif path == "/v1.0/$batch":
            response = self._batch(request)
        elif path.startswith("/v1.0/"):
            response = self._operation(
                request.method,
                path.removeprefix("/v1.0"),
                dict(request.args),
                dict(request.headers),
                request.get_json(silent=True),
                "single",
            )
        else:
            response = graph_error(404)
        return response(environ, start_response)

    # --- identity platform ------------------------------------------------------------------

    def _openid_configuration(self) -> Response:
        base = self.authority
        return _json(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            }
        )

    def _issue(self, subject: str) -> str:
        token = f"eyJ0eXAi.{secrets.token_urlsafe(24)}"
        with self._lock:
            self._access[token] = (subject, time.time() + self.access_token_lifetime)
        return token

    def _token(self, request: Request) -> Response:
        self.faults.count("token")
        form = request.form
        grant = form.get("grant_type")
        client_id = form.get("client_id", "")
        nonce = ""
        if grant == "client_credentials":
            return _json(
                {
                    "token_type": "Bearer",
                    "expires_in": self.access_token_lifetime,
                    "ext_expires_in": self.access_token_lifetime,
                    "access_token": self._issue("app"),
                }
            )
        with self._lock:
            if grant == "authorization_code":
                found = self._codes.pop(form.get("code", ""), None)
                mailbox, nonce = found if found else (None, "")
            elif grant == "refresh_token":
                mailbox = self._refresh.get(form.get("refresh_token", ""))
            else:
                return _json({"error": "unsupported_grant_type"}, 400)
        if mailbox is None:
            return _json(
                {
                    "error": "invalid_grant",
                    "error_description": "AADSTS70008: The provided authorization code or "
                    "refresh token has expired due to inactivity.",
                    "error_codes": [70008],
                    "suberror": "bad_token",
                },
                400,
            )
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[refresh] = mailbox
        oid = hashlib.sha256(mailbox.encode()).hexdigest()[:32]
        oid = f"{oid[:8]}-{oid[8:12]}-{oid[12:16]}-{oid[16:20]}-{oid[20:32]}"
        now = int(time.time())
        claims = {
            "aud": client_id,
            "iss": f"{self.authority}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": mailbox.split("@")[0],
            "oid": oid,
            "preferred_username": mailbox,
            "sub": _b64(mailbox.encode()),
            "tid": TENANT,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        id_token = ".".join(
            [_b64(b'{"typ":"JWT","alg":"none"}'), _b64(json.dumps(claims).encode()), ""]
        )
        return _json(
            {
                "token_type": "Bearer",
                "scope": form.get("scope", ""),
                "expires_in": self.access_token_lifetime,
                "ext_expires_in": self.access_token_lifetime,
                "access_token": self._issue(mailbox),
                "refresh_token": refresh,
                "id_token": id_token,
                "client_info": _b64(json.dumps({"uid": oid, "utid": TENANT}).encode()),
            }
        )

    # --- Graph ------------------------------------------------------------------------------

    def _subject(self, headers: dict[str, str]) -> str | None:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        with self._lock:
            found = self._access.get(auth.removeprefix("Bearer ").strip())
        if found is None or found[1] < time.time():
            return None
        return found[0]

    def _operation(
        self,
        method: str,
        path: str,
        args: dict[str, str],
        headers: dict[str, str],
        body: Any,
        scope: str,
    ) -> Response:
        self.faults.count("api")
        subject = self._subject(headers)
        if subject is None:
            return graph_error(401)
        fault = self.faults.take(scope)
        if fault is not None and not fault.after_commit:
            return self._fault(fault)
        response = self._route(method, path, args, headers, body, subject)
        if fault is not None:
            return self._fault(fault)
        return response

    def _fault(self, fault: Fault) -> Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        return graph_error(fault.status, fault.reason, headers)

    def _route(
        self,
        method: str,
        path: str,
        args: dict[str, str],
        headers: dict[str, str],
        body: Any,
        subject: str,
    ) -> Response:
        match = re.fullmatch(r"/(?:me|users/([^/]+))(/.*)", path)
        if match is None:
            return graph_error(404)
        if match.group(1) is not None:
            if subject != "app":
                return graph_error(403)
            mailbox = unquote(match.group(1))
        elif subject == "app":
            return graph_error(400, "BadRequest")  # /me needs a delegated token
        else:
            mailbox = subject
        rest = match.group(2)
        if rest == "/calendar/events" and method == "POST":
            self.faults.count("insert")
            return self._create(mailbox, body)
        if rest == "/calendar" and method == "GET":
            return _json({"id": "AAMkAGcalendar-" + _b64(mailbox.encode())})
        if rest == "/calendar/getSchedule" and method == "POST":
            self.faults.count("getSchedule")
            return self._schedule(body)
        if rest == "/events" and method == "GET":
            wanted = re.fullmatch(r"transactionId eq '(.+)'", args.get("$filter", ""))
            found = [
                {"id": e["id"]}
                for e in self.live_events(mailbox)
                if wanted and e.get("transactionId") == wanted.group(1)
            ]
            return _json({"value": found})
        event = re.fullmatch(r"/events/([^/]+)", rest)
        if event is None:
            return graph_error(404)
        event_id = unquote(event.group(1))
        with self._lock:
            stored = self.events.get((mailbox, event_id))
            if stored is None:
                return graph_error(404)
            if method == "GET":
                self.faults.count("get")
                return _json(stored)
            if method == "PATCH":
                self.faults.count("update")
                return self._update(mailbox, stored, headers, body)
            if method == "DELETE":
                self.faults.count("delete")
                del self.events[(mailbox, event_id)]
                return Response(status=204)
        return graph_error(405 if method else 404)

    def _check(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "Empty Payload. JSON content expected."
        unknown = set(body) - EVENT_FIELDS
        if unknown:
            return f"Invalid property '{sorted(unknown)[0]}'."
        for name in ("start", "end"):
            if name in body:
                try:
                    _parse_time(body[name])
                except (KeyError, ValueError, TypeError):
                    return f"Invalid {name} dateTimeTimeZone."
        return None

    def _stamp(self, event: dict[str, Any]) -> None:
        change = next(self._changes)
        event["changeKey"] = _b64(change.to_bytes(8, "big"))
        event["@odata.etag"] = f'W/"{event["changeKey"]}"'
        event["lastModifiedDateTime"] = datetime.now(UTC).isoformat()

    def _create(self, mailbox: str, body: Any) -> Response:
        problem = self._check(body)
        if problem:
            return graph_error(400, "ErrorInvalidRequest" if "Invalid" in problem else "")
        if "start" not in body or "end" not in body:
            return graph_error(400)
        with self._lock:
            transaction = body.get("transactionId")
            for event in self.live_events(mailbox):
                if transaction and event.get("transactionId") == transaction:
                    return _json(event, 201)  # a retried create: the same event, no twin
            event_id = "AAMkAG" + _b64(secrets.token_bytes(24))
            event = {"id": event_id, **body, "createdDateTime": datetime.now(UTC).isoformat()}
            if body.get("isOnlineMeeting"):
                event["onlineMeeting"] = {
                    "joinUrl": f"https://teams.microsoft.com/l/meetup-join/{_b64(secrets.token_bytes(12))}"
                }
            self._stamp(event)
            self.events[(mailbox, event_id)] = event
            return _json(event, 201)

    def _update(
        self, mailbox: str, stored: dict[str, Any], headers: dict[str, str], body: Any
    ) -> Response:
        problem = self._check(body)
        if problem:
            return graph_error(400)
        if "transactionId" in body and body["transactionId"] != stored.get("transactionId"):
            return graph_error(400, "ErrorInvalidPropertyUpdate")
        if_match = next((v for k, v in headers.items() if k.lower() == "if-match"), None)
        if if_match and if_match != stored["@odata.etag"]:
            return graph_error(412)
        stored.update(body)
        if body.get("isOnlineMeeting") and "onlineMeeting" not in stored:
            stored["onlineMeeting"] = {
                "joinUrl": f"https://teams.microsoft.com/l/meetup-join/{_b64(secrets.token_bytes(12))}"
            }
        self._stamp(stored)
        return _json(stored)

    def _schedule(self, body: Any) -> Response:
        """calendar: getSchedule as Graph answers it (times in UTC: we always send
        ``Prefer: outlook.timezone="UTC"``): one scheduleInformation per schedule, with its
        scheduleItems (status, and subject and location unless the item is private) and
        the merged ``availabilityView`` (0 free or working elsewhere, 1 tentative, 2 busy,
        3 out of office), one digit per ``availabilityViewInterval`` minutes."""
        if not isinstance(body, dict) or not isinstance(body.get("schedules"), list):
            return graph_error(400, "ErrorInvalidRequest")
        try:
            start, end = _parse_time(body["startTime"]), _parse_time(body["endTime"])
            interval = int(body.get("availabilityViewInterval", 30))
        except (KeyError, ValueError, TypeError):
            return graph_error(400, "ErrorInvalidRequest")
        if end <= start or not 5 <= interval <= 1440:
            return graph_error(400, "ErrorInvalidRequest")
        slots = -(-int((end - start).total_seconds()) // (interval * 60))
        value = []
        for mailbox in body["schedules"]:
            items = []
            view = [0] * slots
            for event in sorted(self.live_events(mailbox), key=lambda e: e["start"]["dateTime"]):
                event_start, event_end = _parse_time(event["start"]), _parse_time(event["end"])
                if not (event_start < end and event_end > start):
                    continue
                status = event.get("showAs", "busy")
                private = event.get("sensitivity") == "private"
                item: dict[str, Any] = {
                    "isPrivate": private,
                    "status": status,
                    "start": _graph_time(event_start),
                    "end": _graph_time(event_end),
                }
                if not private:
                    item["subject"] = event.get("subject", "")
                    item["location"] = (event.get("location") or {}).get("displayName", "")
                items.append(item)
                digit = AVAILABILITY_DIGITS.get(status, 0)
                for slot in range(slots):
                    slot_start = start + slot * _minutes(interval)
                    slot_end = slot_start + _minutes(interval)
                    if event_start < slot_end and event_end > slot_start:
                        view[slot] = max(view[slot], digit)
            value.append(
                {
                    "scheduleId": mailbox,
                    "availabilityView": "".join(str(d) for d in view),
                    "scheduleItems": items,
                }
            )
        return _json(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata"
                "#Collection(microsoft.graph.scheduleInformation)",
                "value": value,
            }
        )

    def _batch(self, request: Request) -> Response:
        self.faults.count("batch")
        if self._subject(dict(request.headers)) is None:
            return graph_error(401)
        payload = request.get_json(silent=True) or {}
        items = payload.get("requests", [])
        if len(items) > 20:
            return graph_error(400, "BadRequest")
        responses = []
        for item in items:
            url = urlsplit("/" + item["url"].lstrip("/"))
            args = dict(pair.split("=", 1) for pair in unquote(url.query).split("&") if "=" in pair)
            headers = {**item.get("headers", {}), "Authorization": request.headers["Authorization"]}
            answer = self._operation(
                item["method"], url.path, args, headers, item.get("body"), "batch_item"
            )
            data = answer.get_data(as_text=True)
            responses.append(
                {
                    "id": item["id"],
                    "status": answer.status_code,
                    "headers": {
                        k: v for k, v in answer.headers.items() if k.lower() != "content-length"
                    },
                    "body": json.loads(data) if data else None,
                }
            )
        return _json({"responses": responses})
