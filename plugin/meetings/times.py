"""Time zones and weekly rules, DST-correct: local wall-clock rules, UTC instants.

A weekly rule ("Tuesdays 14:00-15:00 in America/New_York") is expanded date by date in its
own zone, so it stays at 14:00 local when the zone changes offset. A local time that does
not exist (skipped by a spring-forward) maps to the instant the clock jumps to plus the
same offset into the gap, as zoneinfo does (fold=0); an ambiguous one (repeated in the
autumn) is its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_HHMM = re.compile(r"(\d{1,2}):(\d{2})")

__all__ = [
    "Interval",
    "LocalWindow",
    "intersect",
    "is_valid_zone",
    "local_to_utc",
    "merge",
    "parse_hhmm",
    "subtract",
    "weekly_occurrences",
    "zone",
]


def is_valid_zone(name: str) -> bool:
    """Whether ``name`` is an IANA zone this system knows (e.g. "Europe/London")."""
    if not name or name != name.strip() or ".." in name or name.startswith("/"):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone(name: str) -> ZoneInfo:
    """The zone named ``name``, or UTC for an unknown or empty name (for display only)."""
    return ZoneInfo(name) if is_valid_zone(name) else ZoneInfo("UTC")


def local_to_utc(day: date, at: time, zone_name: str) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in ``zone_name``."""
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone_name)).astimezone(UTC)


def parse_hhmm(value: str) -> time | None:
    """``"HH:MM"`` as a time, or None if it is not one."""
    match = _HHMM.fullmatch(value.strip())
    if match is None:
        return None
    hour, minute = int(match[1]), int(match[2])
    return time(hour, minute) if hour < 24 and minute < 60 else None


@dataclass(frozen=True, order=True)
class Interval:
    """A half-open span of UTC time ``[start, end)``."""

    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class LocalWindow:
    """A weekly wall-clock window: weekday (Monday=0), start and end, in one zone."""

    weekday: int
    start: time
    end: time
    zone_name: str


def weekly_occurrences(window: LocalWindow, since: datetime, until: datetime) -> Iterator[Interval]:
    """The window's instances (UTC) that start in ``[since, until)``, each day in its zone."""
    tz = ZoneInfo(window.zone_name)
    day = since.astimezone(tz).date() - timedelta(days=1)
    last = until.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        if day.weekday() == window.weekday:
            start = local_to_utc(day, window.start, window.zone_name)
            end_day = day if window.end > window.start else day + timedelta(days=1)
            end = local_to_utc(end_day, window.end, window.zone_name)
            if since <= start < until and end > start:
                yield Interval(start, end)
        day += timedelta(days=1)


def merge(intervals: Sequence[Interval]) -> list[Interval]:
    """Sorted, with overlapping or touching intervals joined."""
    merged: list[Interval] = []
    for item in sorted(intervals):
        if merged and item.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Interval(last.start, max(last.end, item.end))
        else:
            merged.append(item)
    return merged


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Where both sets of intervals are free."""
    out: list[Interval] = []
    left, right = merge(a), merge(b)
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i].start, right[j].start)
        end = min(left[i].end, right[j].end)
        if start < end:
            out.append(Interval(start, end))
        if left[i].end < right[j].end:
            i += 1
        else:
            j += 1
    return out


def subtract(free: Sequence[Interval], busy: Sequence[Interval]) -> list[Interval]:
    """``free`` with every ``busy`` span cut out."""
    out: list[Interval] = []
    blocks = merge(busy)
    for span in merge(free):
        cursor = span.start
        for block in blocks:
            if block.end <= cursor or block.start >= span.end:
                continue
            if block.start > cursor:
                out.append(Interval(cursor, block.start))
            cursor = max(cursor, block.end)
        if cursor < span.end:
            out.append(Interval(cursor, span.end))
    return out
