"""Google Calendar provider (google-api-python-client + google-auth)."""

from __future__ import annotations

from plugin.calendars.google.ids import google_event_id, meet_request_id
from plugin.calendars.google.oauth import GOOGLE_SCOPES, authorization_url, exchange_code
from plugin.calendars.google.provider import (
    GoogleCalendarProvider,
    open_provider,
    open_service_account_provider,
)
from plugin.calendars.google.resources import event_body

__all__ = [
    "GOOGLE_SCOPES",
    "GoogleCalendarProvider",
    "authorization_url",
    "event_body",
    "exchange_code",
    "google_event_id",
    "meet_request_id",
    "open_provider",
    "open_service_account_provider",
]
