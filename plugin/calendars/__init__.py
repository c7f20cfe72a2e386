"""Calendar providers: one protocol, one folder per provider (google, microsoft, caldav, ics).

Providers never touch the database. A sync job loads a connection's credentials, opens a
provider with :func:`open_provider`, turns intents into :class:`Operation` values and runs
them (:func:`run_operations` batches where the provider can), then stores the results and
any credentials the provider handed back through ``on_credentials_change``.
"""

from __future__ import annotations

from plugin.calendars.credentials import CredentialsBox, CredentialsCallback
from plugin.calendars.errors import (
    AuthRevokedError,
    CalendarError,
    ConflictError,
    EventGoneError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitedError,
    StaleVersionError,
    TransientError,
    parse_retry_after,
)
from plugin.calendars.protocol import (
    BatchOutcome,
    CalendarProvider,
    Operation,
    OperationKind,
    SupportsBatch,
    SupportsFreeBusy,
    SupportsHealthCheck,
    apply_operation,
    run_operations,
)
from plugin.calendars.registry import (
    ProviderKind,
    open_provider,
    provider_kinds,
    register_provider,
)
from plugin.calendars.settings import CalendarSettings, calendar_settings
from plugin.calendars.types import (
    Attendee,
    BusyInterval,
    EventRef,
    EventResult,
    EventSpec,
    VirtualKind,
    event_key,
)

__all__ = [
    "Attendee",
    "AuthRevokedError",
    "BatchOutcome",
    "BusyInterval",
    "CalendarError",
    "CalendarProvider",
    "CalendarSettings",
    "ConflictError",
    "CredentialsBox",
    "CredentialsCallback",
    "EventGoneError",
    "EventRef",
    "EventResult",
    "EventSpec",
    "Operation",
    "OperationKind",
    "ProviderError",
    "ProviderKind",
    "QuotaExhaustedError",
    "RateLimitedError",
    "StaleVersionError",
    "SupportsBatch",
    "SupportsFreeBusy",
    "SupportsHealthCheck",
    "TransientError",
    "VirtualKind",
    "apply_operation",
    "calendar_settings",
    "event_key",
    "open_provider",
    "parse_retry_after",
    "provider_kinds",
    "register_provider",
    "run_operations",
]
