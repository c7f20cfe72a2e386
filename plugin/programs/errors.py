"""Program errors: one base class; each says what was wrong and what to do."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CapacityFull", "FormInvalid", "NotAllowed", "ProgramError", "StateConflict"]


class ProgramError(Exception):
    """Base of every refusal from the programs services (shown to the person)."""


class FormInvalid(ProgramError):
    """Input failed validation; ``errors`` maps each field name to its message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


class NotAllowed(ProgramError):
    """The person's program role does not allow this action."""


class CapacityFull(ProgramError):
    """The mentor has no free seat on that track (or overall)."""


class StateConflict(ProgramError):
    """The action does not fit the current state (e.g. accepting a closed request)."""
