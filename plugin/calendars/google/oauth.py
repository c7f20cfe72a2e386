"""Per-person Google OAuth (web server flow): the pure steps the views will call.

``authorization_url`` asks for offline access with ``prompt=consent`` so Google returns a
refresh token every time (it gives one only on first consent otherwise); ``exchange_code``
turns the callback's code into the credentials dict the provider takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from plugin.calendars.errors import AuthRevokedError, ProviderError, TransientError
from plugin.calendars.settings import CalendarSettings

__all__ = ["GOOGLE_SCOPES", "authorization_url", "exchange_code"]

#: Events in the person's calendars, and their free/busy; nothing else.
GOOGLE_SCOPES: tuple[str, ...] = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.freebusy",
)


def authorization_url(
    settings: CalendarSettings,
    *,
    redirect_uri: str,
    state: str,
    scopes: Sequence[str] = GOOGLE_SCOPES,
    login_hint: str | None = None,
) -> str:
    """Where to send the person to grant calendar access."""
    params = {
        "client_id": settings.google_client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(scopes),
        "access_type": "offline",
        "prompt": "consent",
        "include_granted_scopes": "true",
        "state": state,
    }
    if login_hint:
        params["login_hint"] = login_hint
    return f"{settings.google_auth_uri}?{urlencode(params)}"


def exchange_code(
    settings: CalendarSettings,
    *,
    code: str,
    redirect_uri: str,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Trade the authorization code for tokens: the credentials dict to encrypt and store."""
    http = session or requests.Session()
    try:
        response = _post_code(http, settings, code=code, redirect_uri=redirect_uri)
    finally:
        if session is None:
            http.close()  # made here: closed here, not left to the garbage collector
    return _credentials_from(response)


def _post_code(
    http: requests.Session, settings: CalendarSettings, *, code: str, redirect_uri: str
) -> requests.Response:
    try:
        return http.post(
            settings.google_token_uri,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": settings.google_client_id,
                "client_secret": settings.google_client_secret,
            },
            timeout=settings.http_timeout,
        )
    except requests.RequestException as exc:
        raise TransientError(f"cannot reach Google's token endpoint: {exc}") from exc


def _credentials_from(response: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json() if response.content else {}
    if response.status_code >= 500:
        raise TransientError(f"Google's token endpoint answered {response.status_code}")
    if response.status_code != 200:
        error = body.get("error", "")
        message = f"Google refused the code: {error} {body.get('error_description', '')}"
        if error == "invalid_grant":
            raise AuthRevokedError(message.strip(), status=response.status_code, reason=error)
        raise ProviderError(message.strip(), status=response.status_code, reason=error)
    if not body.get("refresh_token"):
        raise ProviderError(
            "Google returned no refresh token: the authorization URL must ask for "
            "access_type=offline and prompt=consent"
        )
    expiry = datetime.now(UTC) + timedelta(seconds=int(body.get("expires_in", 3600)))
    return {
        "token": body["access_token"],
        "refresh_token": body["refresh_token"],
        "expiry": expiry.replace(tzinfo=None).isoformat(),
        "scopes": str(body.get("scope", "")).split(),
    }
