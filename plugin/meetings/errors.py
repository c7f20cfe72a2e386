"""Meeting errors: the programs' refusals, plus what only bookings can run into."""

from __future__ import annotations

from plugin.programs.errors import FormInvalid, NotAllowed, ProgramError, StateConflict

__all__ = [
    "BookingLimitReached",
    "FormInvalid",
    "MeetingError",
    "NotAllowed",
    "SlotTaken",
    "StateConflict",
]


class MeetingError(ProgramError):
    """Base of the refusals only meetings and bookings make."""


class SlotTaken(MeetingError):
    """Someone else booked that time first."""


class BookingLimitReached(MeetingError):
    """The mentee already holds as many upcoming bookings on this slot as it allows."""
