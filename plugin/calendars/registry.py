"""Which providers exist and how to open one for a connection.

Built-in providers are named by dotted path and imported on first use, so a process that
never syncs Google never imports googleapiclient. Another provider registers a factory
with :func:`register_provider`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Protocol

from plugin.calendars.credentials import CredentialsCallback
from plugin.calendars.protocol import CalendarProvider
from plugin.calendars.settings import CalendarSettings

__all__ = [
    "ProviderFactory",
    "ProviderKind",
    "open_provider",
    "provider_kinds",
    "register_provider",
]


class ProviderKind(StrEnum):
    GOOGLE = "google"
    MICROSOFT = "microsoft"
    CALDAV = "caldav"
    #: E-mail invitations (iTIP) for people with no connected calendar; no credentials.
    ICS = "ics"


class ProviderFactory(Protocol):
    """Opens a provider for one connection's (decrypted) credentials."""

    def __call__(
        self,
        credentials: Mapping[str, Any],
        *,
        settings: CalendarSettings,
        on_credentials_change: CredentialsCallback | None = None,
    ) -> CalendarProvider: ...


_BUILTIN: dict[str, str] = {
    ProviderKind.GOOGLE: "plugin.calendars.google:open_provider",
    ProviderKind.MICROSOFT: "plugin.calendars.microsoft:open_provider",
    ProviderKind.CALDAV: "plugin.calendars.caldav:open_provider",
    ProviderKind.ICS: "plugin.calendars.itip:open_provider",
}
_registered: dict[str, ProviderFactory] = {}


def register_provider(kind: str, factory: ProviderFactory) -> None:
    """Add (or replace) the factory for ``kind``."""
    _registered[kind] = factory


def provider_kinds() -> list[str]:
    """Every provider name that can be opened."""
    return sorted({*_BUILTIN, *_registered})


def _factory(kind: str) -> ProviderFactory:
    if kind in _registered:
        return _registered[kind]
    if kind not in _BUILTIN:
        raise KeyError(f"no calendar provider {kind!r}; known: {', '.join(provider_kinds())}")
    module_name, _, attribute = _BUILTIN[kind].partition(":")
    factory: ProviderFactory = getattr(importlib.import_module(module_name), attribute)
    return factory


def open_provider(
    kind: str,
    credentials: Mapping[str, Any],
    *,
    settings: CalendarSettings,
    on_credentials_change: CredentialsCallback | None = None,
) -> CalendarProvider:
    """A provider of ``kind`` for one connection; close it (or use ``with``) when done."""
    return _factory(kind)(
        credentials, settings=settings, on_credentials_change=on_credentials_change
    )
