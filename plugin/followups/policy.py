"""Follow-up settings of a program, and the time arithmetic done in people's own zones."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugin.models import Program

__all__ = ["FollowUpPolicy", "local_moment", "parse_hhmm", "quiet_until", "zone_named"]


@dataclass(frozen=True)
class FollowUpPolicy:
    """A program's follow-up settings (``Program.followup_settings`` overrides these)."""

    #: Goal check-in this many days before the goal's target date.
    goal_checkin_days_before: int = 7
    #: "No meeting yet" nudge this many days after a relationship starts.
    first_meeting_days: int = 14
    #: Further nudges this many days apart, at most ``nudge_cap`` in all, then escalation.
    nudge_repeat_days: int = 7
    nudge_cap: int = 2
    #: "How is it going?" to both sides every this many days of an active relationship.
    health_check_days: int = 60
    #: Weekly coordinator digest: ISO weekday (1 = Monday) and local hour.
    digest_weekday: int = 1
    digest_hour: int = 8
    #: Local hour at which date-based messages (goal check-ins) go out.
    send_hour: int = 9
    #: Gap after the last meeting that counts as "no meeting for N days"
    #: (None: the program's ``meeting_cadence_days``).
    meeting_gap_days: int | None = None
    #: Meeting reminders this many hours before the start, largest first (the coordinator
    #: settings form writes ``reminder_offsets_hours``; an empty list turns them off).
    reminder_offsets_hours: tuple[int, ...] = (24, 1)
    #: The feedback request goes out this many minutes after a meeting ends...
    feedback_after_minutes: int = 30
    #: ...and is not planned (or sent) once the meeting ended longer ago than this.
    feedback_window_hours: int = 48

    @classmethod
    def of(cls, program: Program) -> FollowUpPolicy:
        """The program's policy: its stored settings over these defaults (unknown keys ignored)."""
        stored: dict[str, Any] = program.followup_settings or {}
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {
            k: v
            for k, v in stored.items()
            if k in known and isinstance(v, int) and not isinstance(v, bool)
        }
        # The coordinator's settings form names the first nudge "nudge_after_days".
        after = stored.get("nudge_after_days")
        if "first_meeting_days" not in values and isinstance(after, int) and after > 0:
            values["first_meeting_days"] = after
        offsets = stored.get("reminder_offsets_hours")
        if isinstance(offsets, list) and all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in offsets
        ):
            values["reminder_offsets_hours"] = tuple(sorted(set(offsets), reverse=True))
        policy = cls(**values)
        if policy.meeting_gap_days is None:
            policy = cls(**{**values, "meeting_gap_days": program.meeting_cadence_days})
        return policy


def zone_named(name: str | None) -> ZoneInfo:
    """The IANA zone ``name``, or UTC when it is empty or unknown (never an error mid-send)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def local_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``day`` at local time ``at`` in ``zone``, as UTC (DST gaps resolve forward)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def quiet_until(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """When the quiet hours around ``now`` end (UTC), or None if ``now`` is not quiet.

    Quiet hours are local times and may span midnight (21:00-08:00). Equal start and end
    mean no quiet hours.
    """
    if start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    today = local.date()
    if start < end:
        if start <= clock < end:
            return local_moment(today, end, zone)
        return None
    if clock >= start:
        return local_moment(today + timedelta(days=1), end, zone)
    if clock < end:
        return local_moment(today, end, zone)
    return None
