"""CalDAV provider (the caldav package): UID-keyed, idempotent PUTs."""

from __future__ import annotations

from plugin.calendars.caldav.provider import CalDAVProvider, open_provider

__all__ = ["CalDAVProvider", "open_provider"]
