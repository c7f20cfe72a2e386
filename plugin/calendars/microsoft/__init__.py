"""Microsoft 365 / Outlook provider: MSAL for tokens, Microsoft Graph over HTTP."""

from __future__ import annotations

from plugin.calendars.microsoft.auth import (
    DELEGATED_SCOPES,
    MsalTokenSource,
    build_msal_app,
    finish_auth_flow,
    start_auth_flow,
)
from plugin.calendars.microsoft.provider import GraphCalendarProvider, open_provider
from plugin.calendars.microsoft.resources import classify_graph_response, graph_event_body

__all__ = [
    "DELEGATED_SCOPES",
    "GraphCalendarProvider",
    "MsalTokenSource",
    "build_msal_app",
    "classify_graph_response",
    "finish_auth_flow",
    "graph_event_body",
    "open_provider",
    "start_auth_flow",
]
