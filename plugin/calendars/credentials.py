"""Credentials in, updated credentials out: the one place tokens change hands.

Providers receive a connection's credentials as a plain dict (decrypted by the caller) and
report every change (a refreshed access token, a grown MSAL cache) through a callback,
so the job that opened the provider can encrypt and store the new value. Providers never
store anything themselves.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["CredentialsBox", "CredentialsCallback"]

#: Receives the whole new credentials dict whenever it changed.
CredentialsCallback = Callable[[dict[str, Any]], None]


class CredentialsBox:
    """A connection's credentials, reporting each change once to ``on_change``."""

    def __init__(
        self, data: Mapping[str, Any], on_change: CredentialsCallback | None = None
    ) -> None:
        self._data = copy.deepcopy(dict(data))
        self._on_change = on_change
        self._lock = threading.Lock()

    @property
    def data(self) -> dict[str, Any]:
        """A copy of the current credentials."""
        with self._lock:
            return copy.deepcopy(self._data)

    def get(self, name: str, default: Any = None) -> Any:
        with self._lock:
            return copy.deepcopy(self._data.get(name, default))

    def update(self, **changes: Any) -> bool:
        """Merge ``changes``; call back (outside the lock) if anything differs. True if so."""
        with self._lock:
            merged = {**self._data, **changes}
            if merged == self._data:
                return False
            self._data = merged
            snapshot = copy.deepcopy(merged)
        if self._on_change is not None:
            self._on_change(snapshot)
        return True
