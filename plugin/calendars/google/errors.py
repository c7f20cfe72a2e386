"""Classify what the Google client libraries raise into the provider-neutral errors."""

from __future__ import annotations

import json
import socket
from typing import Any

import httplib2
from google.auth import exceptions as auth_exceptions
from googleapiclient.errors import HttpError

from plugin.calendars.errors import (
    AuthRevokedError,
    CalendarError,
    ConflictError,
    EventGoneError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
    parse_retry_after,
)

__all__ = ["classify_google_error", "error_reason"]

#: 403/429 reasons that mean "slow down", as opposed to "stop for today".
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded", "usageLimits"})
#: 403 reasons meaning the grant lacks what we need: the person must reconnect.
PERMISSION_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})
#: Token endpoint errors after which only the person reconnecting helps.
REVOKED_GRANT_ERRORS = ("invalid_grant", "unauthorized_client", "invalid_client")


def error_reason(content: bytes | str | None) -> tuple[str, str]:
    """(reason, message) from a Google error body; empty strings when there is none."""
    if not content:
        return "", ""
    try:
        data: Any = json.loads(content)
    except (ValueError, TypeError):
        return "", ""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return "", ""
    errors = error.get("errors") or []
    reason = errors[0].get("reason", "") if errors and isinstance(errors[0], dict) else ""
    return str(reason or error.get("status", "")), str(error.get("message", ""))


def _classify_http(exc: HttpError) -> CalendarError:
    status = int(exc.resp.status)
    reason, message = error_reason(exc.content)
    text = f"Google Calendar answered {status} {reason or ''}: {message}".strip()
    retry_after = parse_retry_after(exc.resp.get("retry-after"))
    if status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS):
        return RateLimitedError(text, retry_after=retry_after, status=status, reason=reason)
    if status == 403 and reason in QUOTA_REASONS:
        return QuotaExhaustedError(text, status=status, reason=reason)
    if status == 403 and reason in PERMISSION_REASONS:
        return AuthRevokedError(text, status=status, reason=reason)
    if status == 401:
        # AuthorizedHttp already refreshed once and the fresh token was refused too.
        return AuthRevokedError(text, status=status, reason=reason or "authError")
    if status in (404, 410):
        return EventGoneError(text, status=status, reason=reason)
    if status in (409, 412):
        return ConflictError(text, status=status, reason=reason)
    if status >= 500 or status == 408:
        return TransientError(text, retry_after=retry_after, status=status, reason=reason)
    return ProviderError(text, status=status, reason=reason)


def classify_google_error(exc: BaseException) -> CalendarError | None:
    """The neutral error for ``exc``, or None when it is not a provider failure."""
    if isinstance(exc, HttpError):
        return _classify_http(exc)
    if isinstance(exc, auth_exceptions.RefreshError):
        text = str(exc)
        if any(code in text for code in REVOKED_GRANT_ERRORS):
            return AuthRevokedError(
                f"Google refused to refresh the token ({text}): the person must reconnect",
                reason="invalid_grant",
            )
        if getattr(exc, "retryable", False):
            return TransientError(f"Google token refresh failed: {text}")
        return AuthRevokedError(f"Google token refresh failed: {text}", reason="refresh_failed")
    if isinstance(exc, auth_exceptions.TransportError | httplib2.HttpLib2Error | OSError):
        return TransientError(f"cannot reach Google: {exc}")
    if isinstance(exc, socket.timeout):  # pragma: no cover - OSError on 3.10+
        return TransientError("Google did not answer in time")
    return None
