"""Suggested meeting times: where the people's declared weekly windows overlap, minus busy.

Each person's ``Profile.availability`` is written in their own zone and expanded week by
week in that zone (so a window keeps its wall-clock time across DST), converted to UTC,
intersected between the people, and cut by their existing meetings and by any busy
intervals a caller adds (free/busy from connected calendars: :mod:`plugin.meetings.freebusy`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.meetings.times import (
    Interval,
    LocalWindow,
    intersect,
    is_valid_zone,
    merge,
    parse_hhmm,
    subtract,
    weekly_occurrences,
)
from plugin.models import Meeting, MeetingAttendee, MeetingStatus, Participant, Profile

__all__ = ["availability_windows", "busy_intervals", "suggest_meeting_times", "suggest_times"]

#: Suggestions start on these boundaries (UTC minutes), which are whole or half hours in
#: nearly every zone.
STEP = timedelta(minutes=30)
#: At most this many suggestions on one day, so a list of eight spans several days.
PER_DAY = 2


def availability_windows(profile: Profile | None) -> list[LocalWindow]:
    """A profile's weekly windows; malformed entries are skipped, not guessed at."""
    if profile is None or not is_valid_zone(profile.time_zone):
        return []
    windows = []
    for entry in profile.availability or []:
        window = _window(entry, profile.time_zone)
        if window is not None:
            windows.append(window)
    return windows


def _window(entry: Any, zone_name: str) -> LocalWindow | None:
    if not isinstance(entry, dict):
        return None
    day, start, end = entry.get("day"), entry.get("start"), entry.get("end")
    if not isinstance(day, int) or not 0 <= day <= 6:
        return None
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    start_t, end_t = parse_hhmm(start), parse_hhmm(end)
    if start_t is None or end_t is None or end_t <= start_t:
        return None
    return LocalWindow(day, start_t, end_t, zone_name)


def suggest_times(
    people_windows: Sequence[Sequence[LocalWindow]],
    *,
    since: datetime,
    until: datetime,
    duration: timedelta,
    busy: Iterable[Interval] = (),
    limit: int = 8,
) -> list[Interval]:
    """Times of ``duration`` inside everyone's windows and outside ``busy`` (UTC).

    People who declared no window do not constrain the result; with no windows at all
    there is nothing to suggest.
    """
    declared = [w for w in people_windows if w]
    if not declared:
        return []
    common: list[Interval] | None = None
    for windows in declared:
        free = merge([occ for w in windows for occ in weekly_occurrences(w, since, until)])
        common = free if common is None else intersect(common, free)
    open_spans = subtract(common or [], list(busy))
    picked: list[Interval] = []
    per_day: dict[str, int] = {}
    for span in open_spans:
        start = _align(max(span.start, since))
        while start + duration <= span.end and len(picked) < limit:
            day = start.date().isoformat()
            if per_day.get(day, 0) >= PER_DAY:
                break
            picked.append(Interval(start, start + duration))
            per_day[day] = per_day.get(day, 0) + 1
            start += max(duration, STEP)
        if len(picked) >= limit:
            break
    return picked


def _align(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    step = int(STEP.total_seconds() // 60)
    extra = moment.minute % step
    return moment if extra == 0 else moment + timedelta(minutes=step - extra)


def busy_intervals(
    session: Session, participant_ids: Sequence[int], since: datetime, until: datetime
) -> list[Interval]:
    """The scheduled meetings of these participants that overlap ``[since, until)``."""
    rows = session.execute(
        select(Meeting.starts_at, Meeting.ends_at)
        .join(MeetingAttendee, MeetingAttendee.meeting_id == Meeting.id)
        .where(
            MeetingAttendee.participant_id.in_(participant_ids),
            Meeting.status == MeetingStatus.SCHEDULED,
            Meeting.starts_at < until,
            Meeting.ends_at > since,
        )
    ).all()
    return merge([Interval(start, end) for start, end in rows])


def suggest_meeting_times(
    session: Session,
    people: Sequence[Participant],
    *,
    since: datetime,
    weeks: int = 2,
    duration: timedelta = timedelta(minutes=30),
    extra_busy: Iterable[Interval] = (),
    limit: int = 8,
) -> list[Interval]:
    """Suggestions for a meeting of ``people`` in the next ``weeks`` weeks.

    ``extra_busy`` takes free/busy from connected calendars
    (:func:`plugin.meetings.freebusy.calendar_busy`).
    """
    until = since + timedelta(weeks=weeks)
    busy = busy_intervals(session, [p.id for p in people], since, until) + list(extra_busy)
    return suggest_times(
        [availability_windows(p.profile) for p in people],
        since=since,
        until=until,
        duration=duration,
        busy=busy,
        limit=limit,
    )
