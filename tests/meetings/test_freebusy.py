"""Suggested times leave out busy intervals from connected calendars (Google freeBusy, Graph
getSchedule, through the real client libraries against the fakes), cached briefly per
connection, private (times only), and a failing or slow provider never breaks the page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from sqlalchemy.orm import Session

from plugin.lti.roles import CourseRole
from plugin.meetings.availability import suggest_meeting_times
from plugin.meetings.freebusy import CACHE_KEY, calendar_busy
from plugin.meetings.times import Interval
from tests.meetings.conftest import Pair
from tests.meetings.test_calendar_bridge import (  # the fakes and the bridge aimed at them
    Calendars,
    _google_server,
    _graph_server,
    calendars,
    google_fake,
    graph_fake,
)
from tests.programs.conftest import Person

__all__ = ["_google_server", "_graph_server", "calendars", "google_fake", "graph_fake"]

#: Both free every weekday 09:00-18:00 in their own zones (London and New York).
WEEKDAYS = [{"day": d, "start": "09:00", "end": "18:00"} for d in range(5)]
SECRET_TITLE = "Tumour board: patient Jane Roe"


@pytest.fixture
def pair(make_pair: Callable[..., Pair]) -> Pair:
    return make_pair(mentee_availability=WEEKDAYS, mentor_availability=WEEKDAYS)


@pytest.fixture
def connected(session: Session, pair: Pair, calendars: Calendars) -> Iterator[Calendars]:
    """The mentor on Google, the mentee on Outlook; the fakes' knobs reset afterwards."""
    calendars.connect_google(pair.mentor, pair.mentor_user)
    calendars.connect_microsoft(pair.mentee, pair.mentee_user)
    session.commit()
    yield calendars
    for fake in (calendars.google, calendars.graph):
        fake.latency = 0.0
        fake.faults.clear()


def window() -> tuple[datetime, datetime]:
    since = datetime.now(UTC) + timedelta(hours=12)
    return since, since + timedelta(weeks=2)


def offered(html: str) -> list[Interval]:
    """The suggested times a page offers (the radio values)."""
    values = [part.split('"', 1)[0] for part in html.split('name="suggestion" value="')[1:]]
    spans = [v.split("/") for v in values if v != "custom"]
    return [Interval(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in spans]


def overlaps(spans: list[Interval], busy: Interval) -> bool:
    return any(s.start < busy.end and s.end > busy.start for s in spans)


def test_suggestions_avoid_both_calendars_busy_times_and_never_show_their_titles(
    session: Session,
    pair: Pair,
    connected: Calendars,
    as_person: Callable[..., Person],
    redis_conn: Redis,
) -> None:
    since, _ = window()
    declared = suggest_meeting_times(session, [pair.mentee, pair.mentor], since=since)
    first, second = declared[0], declared[2]  # two different days (at most two a day)
    mentor_busy = Interval(first.start, first.start + timedelta(hours=2))
    mentee_busy = Interval(second.start - timedelta(hours=1), second.end + timedelta(hours=1))
    connected.google.add_event(
        pair.mentor_user.email, mentor_busy.start, mentor_busy.end, SECRET_TITLE
    )
    connected.graph.add_event(
        pair.mentee_user.email, mentee_busy.start, mentee_busy.end, SECRET_TITLE
    )
    mentee = as_person(pair.tenant, pair.mentee_user, CourseRole.LEARNER)
    url = f"/programs/{pair.program.id}/relationships/{pair.relationship.id}/meetings/new"

    page = mentee.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    suggestions = offered(html)
    assert len(suggestions) == len(declared)
    assert not overlaps(suggestions, mentor_busy)
    assert not overlaps(suggestions, mentee_busy)
    assert overlaps(declared, mentor_busy)  # without free/busy they would have been offered
    assert overlaps(declared, mentee_busy)
    assert "busy times in their connected calendars" in html
    assert "not checked" not in html
    assert "Tumour" not in html
    assert "Jane Roe" not in html
    asked = (connected.google.counts["freebusy"], connected.graph.counts["getSchedule"])
    assert asked == (1, 1)

    # Rendered again (a reload, a form error): the cache answers, nobody is asked.
    again = mentee.get(url).get_data(as_text=True)
    assert offered(again) == suggestions
    assert (connected.google.counts["freebusy"], connected.graph.counts["getSchedule"]) == asked
    keys = redis_conn.scan_iter(CACHE_KEY.format(connection_id="*"))
    cached = [redis_conn.get(key) for key in keys]
    assert len(cached) == 2
    assert all(value is not None and b"Tumour" not in value for value in cached)


def test_a_rate_limited_calendar_degrades_to_declared_availability_with_a_note(
    session: Session,
    pair: Pair,
    connected: Calendars,
    as_person: Callable[..., Person],
    redis_conn: Redis,
) -> None:
    since, until = window()
    declared = suggest_meeting_times(session, [pair.mentee, pair.mentor], since=since)
    outlook_busy = Interval(declared[0].start, declared[0].end)
    connected.graph.add_event(pair.mentee_user.email, outlook_busy.start, outlook_busy.end)
    connected.google.faults.fail_next(1, 429, "rateLimitExceeded", retry_after=90)
    mentor = as_person(pair.tenant, pair.mentor_user, CourseRole.INSTRUCTOR)
    url = f"/programs/{pair.program.id}/relationships/{pair.relationship.id}/meetings/new"

    page = mentor.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"{pair.mentor.display_name}: connected calendar not checked just now" in html
    assert not overlaps(offered(html), outlook_busy)  # the calendar that answered still counts
    # The failure is remembered for as long as Google asked (Retry-After), not re-asked.
    keys = list(redis_conn.scan_iter(CACHE_KEY.format(connection_id="*")))
    assert sorted(int(redis_conn.ttl(k)) > 60 for k in keys) == [True, True]
    busy = calendar_busy(session, [pair.mentee, pair.mentor], since=since, until=until)
    assert [p.id for p in busy.unavailable] == [pair.mentor.id]
    assert busy.requests == 0
    assert connected.google.counts["api"] == 1  # the one answered 429


def test_a_slow_calendar_is_left_out_and_the_other_still_counts(
    session: Session, pair: Pair, connected: Calendars
) -> None:
    since, until = window()
    # Google now answers after 5 s; Outlook answers at once but needs an authority
    # fetch, a token and getSchedule, so its deadline (2 x timeout = 3 s) is generous:
    # CI on a loaded machine once took more than 0.4 s for those three requests.
    connected.google.latency = 5.0
    busy = calendar_busy(session, [pair.mentee, pair.mentor], since=since, until=until, timeout=1.5)
    assert [p.id for p in busy.unavailable] == [pair.mentor.id]
    assert [p.id for p in busy.checked] == [pair.mentee.id]


def test_a_revoked_grant_is_reported_as_unavailable(
    session: Session, pair: Pair, connected: Calendars
) -> None:
    since, until = window()
    connected.graph.revoke(pair.mentee_user.email)
    connected.graph.expire_access_tokens()
    busy = calendar_busy(session, [pair.mentee, pair.mentor], since=since, until=until)
    assert [p.id for p in busy.unavailable] == [pair.mentee.id]
    assert [p.id for p in busy.checked] == [pair.mentor.id]
    assert busy.requests == 2
