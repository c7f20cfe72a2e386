"""A fake Google Calendar v3 API and OAuth token endpoint on loopback.

It answers the way Google does (error bodies per the Calendar API's "Handle API errors"
guide, multipart batch responses, deleted events that keep their id), validates every
Event body against the schema in the discovery document shipped with
google-api-python-client, and lets a test inject faults, latency and expired tokens.
Serve it with ``tests.conftest.serving(fake)``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import googleapiclient
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from tests.fakes.faults import Fault, FaultPlan

DISCOVERY = Path(googleapiclient.__file__).parent / "discovery_cache/documents/calendar.v3.json"
#: Google checks a service account's assertion against this audience, whatever URL it
#: was posted to (google-auth always signs for it).
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
MESSAGES = {
    400: "Bad Request",
    401: "Invalid Credentials",
    403: "Forbidden",
    404: "Not Found",
    409: "The requested identifier already exists.",
    410: "Resource has been deleted",
    412: "Precondition Failed",
    429: "Rate Limit Exceeded",
    500: "Backend Error",
    503: "Service Unavailable",
}
REASON_DEFAULTS = {
    400: "invalid",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "duplicate",
    410: "deleted",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
}
REASON_MESSAGES = {
    "rateLimitExceeded": "Rate Limit Exceeded",
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "quotaExceeded": "Calendar usage limits exceeded.",
}


class SchemaError(ValueError):
    pass


def _validate(value: Any, schema: dict[str, Any], schemas: dict[str, Any], path: str) -> None:
    if "$ref" in schema:
        schema = schemas[schema["$ref"]]
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise SchemaError(f"Invalid value at '{path}': expected an object")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if name in properties:
                _validate(item, properties[name], schemas, f"{path}.{name}")
            elif extra is not None:
                _validate(item, extra, schemas, f"{path}.{name}")
            else:
                raise SchemaError(f'Invalid JSON payload received. Unknown name "{name}" at {path}')
    elif kind == "array":
        if not isinstance(value, list):
            raise SchemaError(f"Invalid value at '{path}': expected a list")
        for index, item in enumerate(value):
            _validate(item, schema.get("items", {}), schemas, f"{path}[{index}]")
    elif kind == "string":
        if not isinstance(value, str):
            raise SchemaError(f"Invalid value at '{path}': expected a string")
        if "enum" in schema and value not in schema["enum"]:
            raise SchemaError(f"Invalid value at '{path}': {value!r}")
        if schema.get("format") == "date-time":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise SchemaError(f"Invalid value at '{path}': not RFC 3339") from None
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise SchemaError(f"Invalid value at '{path}': expected an integer")
    elif kind == "boolean" and not isinstance(value, bool):
        raise SchemaError(f"Invalid value at '{path}': expected a boolean")


def google_error(
    status: int, reason: str = "", message: str = "", headers: dict[str, str] | None = None
) -> Response:
    """A Google-shaped error response."""
    reason = reason or REASON_DEFAULTS.get(status, "unknown")
    message = message or REASON_MESSAGES.get(reason) or MESSAGES.get(status, "Error")
    domain = "usageLimits" if reason in REASON_MESSAGES else "global"
    body = {
        "error": {
            "errors": [{"domain": domain, "reason": reason, "message": message}],
            "code": status,
            "message": message,
        }
    }
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _instant(when: dict[str, Any]) -> datetime:
    text = when["dateTime"].replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(when["timeZone"]))
    return parsed.astimezone(UTC)


class FakeGoogleCalendar:
    """The fake service (a WSGI app). Tokens, events and faults are inspectable."""

    def __init__(self, access_token_lifetime: int = 3600) -> None:
        discovery = json.loads(DISCOVERY.read_text())
        self._schemas: dict[str, Any] = discovery["schemas"]
        self._lock = threading.RLock()
        self.faults = FaultPlan()
        self.access_token_lifetime = access_token_lifetime
        #: (calendar, event id) -> the stored event resource.
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self._access: dict[str, tuple[str, float]] = {}  # token -> (owner, expires at)
        self._refresh: dict[str, str] = {}  # refresh token -> owner
        self._codes: dict[str, str] = {}  # authorization code -> owner
        self._service_accounts: dict[str, bytes] = {}  # client_email -> public key PEM
        self._etags = itertools.count(int(time.time() * 1000))

    # --- control from tests -----------------------------------------------------------

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

    def grant(self, owner: str = "mentor@example.edu") -> dict[str, Any]:
        """Credentials as a connected person's would be stored: token, refresh_token, expiry."""
        refresh = f"1//{secrets.token_urlsafe(24)}"
        with self._lock:
            self._refresh[refresh] = owner
        token, expires = self._issue(owner)
        expiry = datetime.fromtimestamp(expires, UTC).replace(tzinfo=None)
        return {"token": token, "refresh_token": refresh, "expiry": expiry.isoformat()}

    def authorization_code(self, owner: str = "mentor@example.edu") -> str:
        code = f"4/{secrets.token_urlsafe(16)}"
        with self._lock:
            self._codes[code] = owner
        return code

    def trust_service_account(self, client_email: str, public_key_pem: bytes) -> None:
        """Accept JWT-bearer grants signed by this service account (domain-wide delegation)."""
        with self._lock:
            self._service_accounts[client_email] = public_key_pem

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401)."""
        with self._lock:
            self._access.clear()

    def revoke(self, refresh_token: str) -> None:
        """The person removed our access: their tokens stop working, refresh is invalid_grant."""
        with self._lock:
            owner = self._refresh.pop(refresh_token, None)
            self._access = {t: v for t, v in self._access.items() if v[0] != owner}

    def add_event(
        self,
        owner: str,
        start: datetime,
        end: datetime,
        summary: str = "Private appointment",
        *,
        transparency: str = "opaque",
    ) -> dict[str, Any]:
        """An event the person made themselves (not through Preceptor), for free/busy."""
        event_id = secrets.token_hex(13)
        event = {
            "kind": "calendar#event",
            "id": event_id,
            "status": "confirmed",
            "summary": summary,
            "transparency": transparency,
            "start": {"dateTime": start.astimezone(UTC).isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": end.astimezone(UTC).isoformat(), "timeZone": "UTC"},
            "organizer": {"email": owner, "self": True},
        }
        with self._lock:
            self._stamp(event)
            self.events[(owner, event_id)] = event
        return event

    def live_events(self, calendar: str = "mentor@example.edu") -> list[dict[str, Any]]:
        with self._lock:
            return [
                event
                for (owner, _), event in self.events.items()
                if owner == calendar and event["status"] != "cancelled"
            ]

    def event(self, event_id: str, calendar: str = "mentor@example.edu") -> dict[str, Any] | None:
        with self._lock:
            return self.events.get((calendar, event_id))

    # --- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.faults.wait()
        self.faults.count("http")
        if request.path == "/token":
            response = self._token(request)
        elif request.path == "/batch/calendar/v3":
            response = self._batch(request)
        else:
            response = self._operation(request, "single")
        return response(environ, start_response)

    def _issue(self, owner: str) -> tuple[str, float]:
        token = f"ya29.{secrets.token_urlsafe(24)}"
        expires = time.time() + self.access_token_lifetime
        with self._lock:
            self._access[token] = (owner, expires)
        return token, expires

    def _token(self, request: Request) -> Response:
        self.faults.count("token")
        grant = request.form.get("grant_type")
        if grant == "refresh_token":
            with self._lock:
                owner = self._refresh.get(request.form.get("refresh_token", ""))
        elif grant == "authorization_code":
            with self._lock:
                owner = self._codes.pop(request.form.get("code", ""), None)
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            owner = self._delegated_subject(request.form.get("assertion", ""))
        else:
            return _json({"error": "unsupported_grant_type"}, 400)
        if owner is None:
            return _json(
                {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
                400,
            )
        token, _ = self._issue(owner)
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": self.access_token_lifetime,
            "token_type": "Bearer",
            "scope": request.form.get(
                "scope",
                "https://www.googleapis.com/auth/calendar.events "
                "https://www.googleapis.com/auth/calendar.freebusy",
            ),
        }
        if grant == "authorization_code":
            refresh = f"1//{secrets.token_urlsafe(24)}"
            with self._lock:
                self._refresh[refresh] = owner
            body["refresh_token"] = refresh
        return _json(body)

    def _delegated_subject(self, assertion: str) -> str | None:
        """The user a service account's signed assertion acts for, if we trust the signer."""
        import jwt

        try:
            issuer = jwt.decode(assertion, options={"verify_signature": False})["iss"]
            with self._lock:
                key = self._service_accounts.get(issuer)
            if key is None:
                return None
            claims = jwt.decode(
                assertion, key, algorithms=["RS256"], audience=GOOGLE_TOKEN_AUDIENCE
            )
        except (jwt.PyJWTError, KeyError):
            return None
        return str(claims.get("sub") or claims["iss"])

    def _owner(self, request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        with self._lock:
            found = self._access.get(token)
        if found is None or found[1] < time.time():
            return None
        return found[0]

    def _operation(self, request: Request, scope: str) -> Response:
        self.faults.count("api")
        owner = self._owner(request)
        if owner is None:
            return google_error(401)
        fault = self.faults.take(scope)
        if fault is not None and not fault.after_commit:
            return self._fault(fault)
        response = self._route(request, owner)
        if fault is not None:
            return self._fault(fault)
        return response

    def _fault(self, fault: Fault) -> Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        return google_error(fault.status, fault.reason, headers=headers)

    # --- the API --------------------------------------------------------------------------

    def _route(self, request: Request, owner: str) -> Response:
        path = request.path.removeprefix("/calendar/v3")
        if path == "/freeBusy" and request.method == "POST":
            self.faults.count("freebusy")
            return self._free_busy(request.get_json(silent=True) or {}, owner)
        match = re.fullmatch(r"/calendars/([^/]+)/events(?:/([^/]+))?", path)
        if match is None:
            return google_error(404)
        calendar = owner if match.group(1) == "primary" else match.group(1)
        event_id = match.group(2)
        method = request.method
        if event_id is None and method == "POST":
            self.faults.count("insert")
            return self._insert(request, calendar)
        if event_id is None:
            return google_error(404)
        if method == "GET":
            self.faults.count("get")
            with self._lock:
                stored = self.events.get((calendar, event_id))
            return _json(stored) if stored is not None else google_error(404)
        if method == "PUT":
            self.faults.count("update")
            return self._update(request, calendar, event_id)
        if method == "DELETE":
            self.faults.count("delete")
            return self._delete(calendar, event_id)
        return google_error(404)

    def _check_body(self, body: Any, method: str) -> str | None:
        try:
            _validate(body, {"$ref": "Event"}, self._schemas, "event")
        except SchemaError as exc:
            return str(exc)
        required = [
            name
            for name, prop in self._schemas["Event"]["properties"].items()
            if method in prop.get("annotations", {}).get("required", [])
        ]
        for name in required:
            if name not in body:
                return f"Missing {name} time." if name in ("start", "end") else f"Missing {name}."
        for name in ("start", "end"):
            when = body[name]
            if "dateTime" not in when:
                continue  # all-day events use "date"
            zone = when.get("timeZone")
            if zone:
                try:
                    ZoneInfo(zone)
                except (ZoneInfoNotFoundError, ValueError):
                    return f"Invalid time zone definition for {name} time."
            elif datetime.fromisoformat(when["dateTime"].replace("Z", "+00:00")).tzinfo is None:
                return f"Missing time zone definition for {name} time."
        if "dateTime" in body["start"] and _instant(body["end"]) <= _instant(body["start"]):
            return "The specified time range is empty."
        return None

    def _stamp(self, event: dict[str, Any]) -> None:
        event["etag"] = f'"{next(self._etags)}"'
        event["updated"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    def _conference(
        self, body: dict[str, Any], previous: dict[str, Any] | None, version: int
    ) -> dict[str, Any] | None:
        wanted = (body.get("conferenceData") or {}).get("createRequest")
        old = (previous or {}).get("conferenceData")
        if version < 1 or wanted is None:
            return old if version < 1 else body.get("conferenceData")
        if old and old.get("createRequest", {}).get("requestId") == wanted["requestId"]:
            return dict(old)
        code = hashlib.sha256(wanted["requestId"].encode()).hexdigest()
        letters = "".join(chr(ord("a") + int(c, 16) % 26) for c in code[:10])
        meet = f"https://meet.google.com/{letters[:3]}-{letters[3:7]}-{letters[7:10]}"
        return {
            "createRequest": {**wanted, "status": {"statusCode": "success"}},
            "entryPoints": [{"entryPointType": "video", "uri": meet, "label": meet[8:]}],
            "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
            "conferenceId": meet.rsplit("/", 1)[1],
        }

    def _insert(self, request: Request, calendar: str) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return google_error(400, "parseError", "Parse Error")
        problem = self._check_body(body, "calendar.events.insert")
        if problem:
            return google_error(
                400, "invalid" if "Unknown" not in problem else "badRequest", problem
            )
        event_id = body.get("id") or secrets.token_hex(13)
        if not EVENT_ID.match(event_id):
            return google_error(400, "invalid", "Invalid resource id value.")
        version = int(request.args.get("conferenceDataVersion", "0"))
        with self._lock:
            if (calendar, event_id) in self.events:  # deleted ones too: Google keeps the id
                return google_error(409, "duplicate")
            event = {**body, "id": event_id}
            event.update(
                kind="calendar#event",
                status=body.get("status", "confirmed"),
                created=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                iCalUID=f"{event_id}@google.com",
                sequence=0,
                organizer={"email": calendar, "self": True},
                creator={"email": calendar, "self": True},
                htmlLink=f"https://www.google.com/calendar/event?eid={event_id}",
            )
            conference = self._conference(body, None, version)
            if conference:
                event["conferenceData"] = conference
                event["hangoutLink"] = conference["entryPoints"][0]["uri"]
            self._stamp(event)
            self.events[(calendar, event_id)] = event
            return _json(event)

    def _update(self, request: Request, calendar: str, event_id: str) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return google_error(400, "parseError", "Parse Error")
        problem = self._check_body(body, "calendar.events.update")
        if problem:
            return google_error(400, "invalid", problem)
        version = int(request.args.get("conferenceDataVersion", "0"))
        with self._lock:
            stored = self.events.get((calendar, event_id))
            if stored is None:
                return google_error(404)
            if_match = request.headers.get("If-Match")
            if if_match and if_match != stored["etag"]:
                return google_error(412)
            event = {**body, "id": event_id}
            for name in ("kind", "created", "iCalUID", "organizer", "creator", "htmlLink"):
                event[name] = stored[name]
            event["status"] = body.get("status", "confirmed")
            event["sequence"] = stored["sequence"] + 1
            conference = self._conference(body, stored, version)
            event.pop("conferenceData", None)
            if conference:
                event["conferenceData"] = conference
                event["hangoutLink"] = conference["entryPoints"][0]["uri"]
            self._stamp(event)
            self.events[(calendar, event_id)] = event
            return _json(event)

    def _delete(self, calendar: str, event_id: str) -> Response:
        with self._lock:
            stored = self.events.get((calendar, event_id))
            if stored is None:
                return google_error(404)
            if stored["status"] == "cancelled":
                return google_error(410)
            stored["status"] = "cancelled"
            self._stamp(stored)
        return Response(status=204)

    def _free_busy(self, body: dict[str, Any], owner: str) -> Response:
        """freebusy.query as Google answers it: merged busy periods per calendar, no details.

        Only the owner's own calendar can be read here; any other id answers, per calendar,
        ``errors: [{domain: global, reason: notFound}]`` as Google does for a calendar the
        caller may not see. An empty range and more than 50 items fail the whole request.
        """
        try:
            start = datetime.fromisoformat(body["timeMin"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(body["timeMax"].replace("Z", "+00:00"))
        except (KeyError, ValueError, AttributeError):
            return google_error(400, "required", "Missing or invalid timeMin/timeMax.")
        if start.tzinfo is None or end.tzinfo is None:
            return google_error(400, "invalid", "timeMin and timeMax need an offset.")
        if end <= start:
            return google_error(400, "timeRangeEmpty", "The specified time range is empty.")
        items = body.get("items", [])
        if len(items) > 50:
            return google_error(400, "tooManyCalendarsRequested", "Too many calendars requested.")
        calendars: dict[str, Any] = {}
        for item in items:
            if item["id"] not in ("primary", owner):
                calendars[item["id"]] = {
                    "errors": [{"domain": "global", "reason": "notFound"}],
                    "busy": [],
                }
                continue
            spans: list[list[datetime]] = []
            for event in sorted(self.live_events(owner), key=lambda e: _instant(e["start"])):
                if event.get("transparency") == "transparent" or "dateTime" not in event["start"]:
                    continue
                event_start, event_end = _instant(event["start"]), _instant(event["end"])
                if not (event_start < end and event_end > start):
                    continue
                if spans and event_start <= spans[-1][1]:
                    spans[-1][1] = max(spans[-1][1], event_end)  # overlapping: one period
                else:
                    spans.append([event_start, event_end])
            calendars[item["id"]] = {
                "busy": [
                    {
                        "start": span_start.isoformat().replace("+00:00", "Z"),
                        "end": span_end.isoformat().replace("+00:00", "Z"),
                    }
                    for span_start, span_end in spans
                ]
            }
        return _json(
            {
                "kind": "calendar#freeBusy",
                "timeMin": body["timeMin"],
                "timeMax": body["timeMax"],
                "calendars": calendars,
            }
        )

    # --- batch ----------------------------------------------------------------------------

    def _batch(self, request: Request) -> Response:
        self.faults.count("batch")
        if self._owner(request) is None:
            return google_error(401)
        content_type = request.headers.get("Content-Type", "")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.get_data()
        )
        boundary = f"batch_{secrets.token_hex(8)}"
        parts = []
        for part in message.iter_parts():
            content_id = str(part["Content-ID"]).strip("<>")
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            inner = self._inner_request(payload)
            response = self._operation(inner, "batch_item")
            status_line = f"HTTP/1.1 {response.status}"
            headers = "".join(
                f"{name}: {value}\r\n"
                for name, value in response.headers.items()
                if name.lower() != "content-length"
            )
            parts.append(
                f"--{boundary}\r\nContent-Type: application/http\r\n"
                f"Content-ID: <response-{content_id}>\r\n\r\n"
                f"{status_line}\r\n{headers}\r\n{response.get_data(as_text=True)}\r\n"
            )
        body = "".join(parts) + f"--{boundary}--\r\n"
        return Response(body, status=200, content_type=f"multipart/mixed; boundary={boundary}")

    def _inner_request(self, payload: bytes) -> Request:
        head, _, body = payload.replace(b"\r\n", b"\n").partition(b"\n\n")
        lines = head.decode().split("\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(": ")
            if sep:
                headers[name] = value
        url = urlsplit(target)
        builder = EnvironBuilder(
            method=method,
            path=url.path,
            query_string={k: v[0] for k, v in parse_qs(url.query).items()},
            headers=[(k, v) for k, v in headers.items() if k.lower() != "content-length"],
            data=body.strip() or None,
        )
        try:
            return Request(builder.get_environ())
        finally:
            builder.close()
