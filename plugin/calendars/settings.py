"""Endpoints and app credentials of the calendar services, from the app's settings.

Every endpoint is configurable so national clouds (Microsoft 365 GCC High, 21Vianet) and
the loopback fakes of the test suite work with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugin.config import Settings

__all__ = ["CalendarSettings", "calendar_settings"]


@dataclass(frozen=True, slots=True)
class CalendarSettings:
    """What providers need to know about the services, independent of any one person."""

    google_client_id: str = ""
    google_client_secret: str = ""
    #: Root of Google's APIs; the Calendar API lives under {root}/calendar/v3/.
    google_api_root: str = "https://www.googleapis.com"
    google_token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
    google_auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"
    microsoft_client_id: str = ""
    microsoft_client_secret: str = ""
    #: Authority including the tenant ("common", "organizations" or a tenant id).
    microsoft_authority: str = "https://login.microsoftonline.com/common"
    microsoft_graph_root: str = "https://graph.microsoft.com/v1.0"
    #: Seconds before an HTTP request to a provider is abandoned (then retried later).
    http_timeout: float = 30.0
    #: The relay e-mail invitations (iTIP) go through; None: no relay configured.
    smtp_url: str | None = None
    mail_from: str = "Preceptor <preceptor@localhost>"
    #: Development without a relay: invitations are built but not sent.
    mail_outbox_only: bool = False

    @property
    def google_calendar_endpoint(self) -> str:
        return f"{self.google_api_root.rstrip('/')}/calendar/v3/"

    @property
    def google_batch_uri(self) -> str:
        return f"{self.google_api_root.rstrip('/')}/batch/calendar/v3"

    @property
    def graph_resource(self) -> str:
        """The Graph origin scopes are prefixed with (https://graph.microsoft.com)."""
        scheme, _, rest = self.microsoft_graph_root.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"


def calendar_settings(settings: Settings) -> CalendarSettings:
    """The calendar part of the app's settings."""

    def secret(value: object) -> str:
        get = getattr(value, "get_secret_value", None)
        return str(get()) if get is not None else ""

    return CalendarSettings(
        google_client_id=settings.google_client_id or "",
        google_client_secret=secret(settings.google_client_secret),
        google_api_root=settings.google_api_root,
        google_token_uri=settings.google_token_uri,
        google_auth_uri=settings.google_auth_uri,
        microsoft_client_id=settings.microsoft_client_id or "",
        microsoft_client_secret=secret(settings.microsoft_client_secret),
        microsoft_authority=settings.microsoft_authority,
        microsoft_graph_root=settings.microsoft_graph_root,
        http_timeout=settings.calendar_http_timeout,
        smtp_url=secret(settings.smtp_url) or None,
        mail_from=settings.mail_from,
        mail_outbox_only=not settings.is_production,
    )
