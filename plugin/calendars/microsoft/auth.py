"""Microsoft tokens through MSAL: a per-person token cache, or the app's own token.

Delegated (per person): MSAL's auth-code flow; the person's ``SerializableTokenCache`` is
the credential, serialised into the credentials dict (which the caller encrypts) and
handed back whenever MSAL changes it (a refreshed token). App-only (client credentials)
is the institution option: one app token acts on any mailbox the tenant admin allowed.

MSAL reports errors as dicts, not exceptions; :func:`raise_for_msal` turns them into the
provider-neutral errors.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import msal
import requests

from plugin.calendars.credentials import CredentialsBox
from plugin.calendars.errors import AuthRevokedError, ProviderError, TransientError
from plugin.calendars.settings import CalendarSettings

__all__ = [
    "DELEGATED_SCOPES",
    "MsalTokenSource",
    "app_scopes",
    "build_msal_app",
    "delegated_scopes",
    "finish_auth_flow",
    "raise_for_msal",
    "start_auth_flow",
]

#: Graph permissions a person grants (offline_access is added by MSAL itself).
DELEGATED_SCOPES: tuple[str, ...] = ("Calendars.ReadWrite",)
#: AAD errors after which only the person (or an admin) can restore access.
REVOKED_ERRORS = frozenset(
    {
        "invalid_grant",
        "interaction_required",
        "consent_required",
        "invalid_client",
        "unauthorized_client",
    }
)


def delegated_scopes(settings: CalendarSettings) -> list[str]:
    """Scopes qualified with the Graph resource, so national clouds get their own."""
    return [f"{settings.graph_resource}/{scope}" for scope in DELEGATED_SCOPES]


def app_scopes(settings: CalendarSettings) -> list[str]:
    return [f"{settings.graph_resource}/.default"]


def build_msal_app(
    settings: CalendarSettings,
    cache: msal.SerializableTokenCache | None = None,
    http_client: Any = None,
    http_cache: MutableMapping[str, Any] | None = None,
) -> msal.ConfidentialClientApplication:
    """An MSAL confidential client for the configured authority (no instance discovery,
    so national clouds and test authorities work).

    ``http_cache`` keeps MSAL's metadata fetches (the authority's OpenID configuration)
    between apps: a worker draining many connections passes one dict for its lifetime
    and fetches the configuration once instead of once per person.
    """
    return msal.ConfidentialClientApplication(
        settings.microsoft_client_id,
        client_credential=settings.microsoft_client_secret,
        authority=settings.microsoft_authority,
        token_cache=cache,
        http_client=http_client or requests.Session(),
        instance_discovery=False,
        timeout=settings.http_timeout,
        http_cache=http_cache,
    )


def raise_for_msal(result: Mapping[str, Any] | None, what: str) -> None:
    """Raise the neutral error an MSAL result dict carries, if any."""
    if result is None:
        raise AuthRevokedError(
            f"{what}: no refresh token cached for this person; they must reconnect",
            reason="no_account",
        )
    error = result.get("error")
    if not error:
        return
    message = f"{what}: {error}: {result.get('error_description', '')}".strip()
    if error in REVOKED_ERRORS:
        raise AuthRevokedError(message, reason=str(error))
    if error in ("temporarily_unavailable", "server_error") or "timeout" in str(error):
        raise TransientError(message, reason=str(error))
    raise ProviderError(message, reason=str(error))


def start_auth_flow(
    settings: CalendarSettings,
    *,
    redirect_uri: str,
    login_hint: str | None = None,
    http_client: Any = None,
    state: str | None = None,
) -> dict[str, Any]:
    """Begin the per-person auth-code flow: keep the returned dict in the session and
    send the person to its ``auth_uri``. ``state``: the caller's own (e.g. signed) state."""
    own = requests.Session() if http_client is None else None
    try:
        app = build_msal_app(settings, http_client=http_client or own)
        return _initiate(app, settings, redirect_uri, login_hint, state)
    finally:
        if own is not None:
            own.close()


def _initiate(
    app: msal.ConfidentialClientApplication,
    settings: CalendarSettings,
    redirect_uri: str,
    login_hint: str | None,
    state: str | None,
) -> dict[str, Any]:
    flow: dict[str, Any] = app.initiate_auth_code_flow(
        delegated_scopes(settings),
        redirect_uri=redirect_uri,
        login_hint=login_hint,
        state=state,
        prompt="select_account",
        response_mode="form_post",  # the code arrives in a POST body, not the URL
    )
    if "error" in flow:
        raise_for_msal(flow, "cannot start Microsoft sign-in")
    return flow


def finish_auth_flow(
    settings: CalendarSettings,
    flow: Mapping[str, Any],
    auth_response: Mapping[str, str],
    *,
    http_client: Any = None,
) -> dict[str, Any]:
    """Redeem the callback's query parameters: the credentials dict to encrypt and store."""
    cache = msal.SerializableTokenCache()
    own = requests.Session() if http_client is None else None
    app = build_msal_app(settings, cache, http_client or own)
    try:
        result = app.acquire_token_by_auth_code_flow(dict(flow), dict(auth_response))
    except ValueError as exc:  # state mismatch: a forged or stale callback
        raise ProviderError(f"Microsoft sign-in callback does not match: {exc}") from exc
    finally:
        if own is not None:
            own.close()  # the sessions this module makes are closed, never left to GC
    raise_for_msal(result, "Microsoft refused the sign-in")
    claims = result.get("id_token_claims") or {}
    accounts = app.get_accounts()
    if not accounts:
        raise ProviderError("Microsoft sign-in returned no account")
    return {
        "mode": "delegated",
        "cache": cache.serialize(),
        "home_account_id": accounts[0]["home_account_id"],
        "username": claims.get("preferred_username") or accounts[0].get("username", ""),
    }


class MsalTokenSource:
    """Bearer tokens for Graph, refreshing through MSAL and saving its cache on change."""

    def __init__(
        self,
        settings: CalendarSettings,
        box: CredentialsBox,
        *,
        http_client: Any = None,
        http_cache: MutableMapping[str, Any] | None = None,
    ) -> None:
        self._box = box
        self._delegated = box.get("mode", "delegated") == "delegated"
        self._cache = msal.SerializableTokenCache()
        if self._delegated and box.get("cache"):
            self._cache.deserialize(box.get("cache"))
        self._own_http = requests.Session() if http_client is None else None
        try:
            self._app = build_msal_app(
                settings, self._cache, http_client or self._own_http, http_cache
            )
        except BaseException:  # MSAL fetches the authority's metadata here: may fail
            self.close()
            raise
        self._scopes: Sequence[str] = (
            delegated_scopes(settings) if self._delegated else app_scopes(settings)
        )

    @property
    def delegated(self) -> bool:
        return bool(self._delegated)

    def token(self, *, force_refresh: bool = False) -> str:
        """A valid access token; ``force_refresh`` after Graph refused the cached one."""
        if self._delegated:
            home = self._box.get("home_account_id")
            accounts = [a for a in self._app.get_accounts() if a["home_account_id"] == home]
            result = (
                self._app.acquire_token_silent_with_error(
                    list(self._scopes), accounts[0], force_refresh=force_refresh
                )
                if accounts
                else None
            )
            what = "Microsoft refused to refresh the token"
        else:
            result = self._app.acquire_token_for_client(list(self._scopes))
            what = "Microsoft refused the app's client credentials"
        try:
            raise_for_msal(result, what)
        finally:
            self._save()
        assert result is not None
        return str(result["access_token"])

    def close(self) -> None:
        """Close the HTTP session this source made for MSAL (a caller's stays open)."""
        if self._own_http is not None:
            self._own_http.close()

    def _save(self) -> None:
        if self._delegated and self._cache.has_state_changed:
            self._box.update(cache=self._cache.serialize())
            self._cache.has_state_changed = False
