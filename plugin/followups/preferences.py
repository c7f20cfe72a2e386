"""A participant's own notification preferences: which follow-ups, over which channel,
their quiet hours and daily cap. Validated as a whole; nothing changes on a bad field."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy.orm import Session

from plugin.followups.channels import CHANNELS
from plugin.followups.unsubscribe import preference_for
from plugin.models import FollowUpKind, NotificationPreference, Participant
from plugin.programs.errors import FormInvalid

__all__ = [
    "CAP_RANGE",
    "PreferenceView",
    "kinds_for",
    "preference_view",
    "update_preferences",
]

#: Follow-ups per day a person may ask for (empty: the site's default).
CAP_RANGE: Final = (1, 20)
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

#: What each kind is, as a person reads it on their preferences page.
KIND_LABELS: Final[dict[FollowUpKind, str]] = {
    FollowUpKind.INTRODUCTION: "Introductions to a new mentor or mentee",
    FollowUpKind.MEETING_REMINDER: "Reminders before a meeting",
    FollowUpKind.MEETING_FEEDBACK: "Requests for feedback after a meeting",
    FollowUpKind.NO_MEETING_NUDGE: "Nudges when you have not met for a while",
    FollowUpKind.GOAL_CHECKIN: "Check-ins before a goal's date",
    FollowUpKind.HEALTH_CHECK: "“How is it going?” every few weeks",
    FollowUpKind.ESCALATION: "Pairs that may need a coordinator's help",
    FollowUpKind.COORDINATOR_DIGEST: "The weekly coordinator digest",
}
_COORDINATOR_KINDS: Final = (FollowUpKind.ESCALATION, FollowUpKind.COORDINATOR_DIGEST)

PreferenceForm = Mapping[str, str | Sequence[str]]


def kinds_for(participant: Participant) -> list[tuple[str, str]]:
    """The kinds this person can receive, as (value, label): coordinators' only for them."""
    return [
        (kind.value, label)
        for kind, label in KIND_LABELS.items()
        if participant.is_coordinator or kind not in _COORDINATOR_KINDS
    ]


@dataclass(frozen=True)
class PreferenceView:
    """The form's values (strings, as the page shows them)."""

    channel: str
    wanted: list[str]
    quiet_start: str
    quiet_end: str
    daily_cap: str
    unsubscribed: bool


def preference_view(preference: NotificationPreference, participant: Participant) -> PreferenceView:
    return PreferenceView(
        channel=preference.channel if preference.channel in CHANNELS else "email",
        wanted=[v for v, _ in kinds_for(participant) if v not in preference.muted_kinds],
        quiet_start=preference.quiet_start or "",
        quiet_end=preference.quiet_end or "",
        daily_cap="" if preference.daily_cap is None else str(preference.daily_cap),
        unsubscribed=preference.unsubscribed_at is not None,
    )


def _text(form: PreferenceForm, name: str) -> str:
    value = form.get(name, "")
    return (value if isinstance(value, str) else "").strip()


def _many(form: PreferenceForm, name: str) -> list[str]:
    value = form.get(name, [])
    return [value] if isinstance(value, str) else list(value)


def update_preferences(
    session: Session, participant: Participant, form: PreferenceForm
) -> NotificationPreference:
    """Apply the preferences form (all or nothing; FormInvalid names each bad field).

    Unticked kinds are muted. Resubscribing needs its own tick: saving the form never
    undoes an unsubscribe by itself.
    """
    errors: dict[str, str] = {}
    channel = _text(form, "channel")
    if channel not in CHANNELS:
        errors["channel"] = "Choose how you want to receive these messages."
    shown = [v for v, _ in kinds_for(participant)]
    wanted = _many(form, "kinds")
    if any(v not in shown for v in wanted):
        errors["kinds"] = "Choose messages from the list."
    start, end = _text(form, "quiet_start"), _text(form, "quiet_end")
    if start or end:
        if not _TIME.match(start):
            errors["quiet_start"] = "Enter a time as HH:MM (24-hour), or leave both empty."
        if not _TIME.match(end):
            errors["quiet_end"] = "Enter a time as HH:MM (24-hour), or leave both empty."
        elif start == end:
            errors["quiet_end"] = "Quiet hours must end at a different time than they start."
    raw_cap = _text(form, "daily_cap")
    cap: int | None = None
    if raw_cap:
        low, high = CAP_RANGE
        if not raw_cap.isdigit() or not low <= int(raw_cap) <= high:
            errors["daily_cap"] = f"Enter a number from {low} to {high}, or leave it empty."
        else:
            cap = int(raw_cap)
    if errors:
        raise FormInvalid(errors)
    preference = preference_for(session, participant.id)
    preference.channel = channel
    # Kinds not shown to this person (a coordinator's, say) keep their stored setting.
    kept = [k for k in preference.muted_kinds if k not in shown]
    preference.muted_kinds = kept + [v for v in shown if v not in wanted]
    preference.quiet_start, preference.quiet_end = (start, end) if start else (None, None)
    preference.daily_cap = cap
    if _text(form, "resubscribe") == "yes":
        preference.unsubscribed_at = None
    session.flush()
    return preference
