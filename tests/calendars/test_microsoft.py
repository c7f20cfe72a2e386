"""Microsoft Graph provider (MSAL + requests) against the fake identity platform and Graph."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from plugin.calendars.errors import (
    AuthRevokedError,
    EventGoneError,
    ProviderError,
    RateLimitedError,
    StaleVersionError,
    TransientError,
)
from plugin.calendars.microsoft import open_provider
from plugin.calendars.microsoft.auth import app_scopes, delegated_scopes
from plugin.calendars.protocol import Operation, SupportsHealthCheck
from plugin.calendars.settings import CalendarSettings
from plugin.calendars.types import EventRef, EventSpec, VirtualKind, event_key
from tests.fakes.graph import FakeGraph, LoopbackSession

Connect = Callable[..., tuple[Any, list[dict[str, Any]]]]
NEW_YORK = ZoneInfo("America/New_York")
MakeSpec = Callable[..., EventSpec]
OWNER = "mentor@example.edu"


@pytest.fixture
def fake(graph_fake: tuple[FakeGraph, int]) -> FakeGraph:
    return graph_fake[0]


def test_sign_in_yields_a_serialised_cache(graph_connection: Connect) -> None:
    _, saved = graph_connection()
    credentials = saved[0]
    assert credentials["mode"] == "delegated"
    assert credentials["username"] == OWNER
    cache = json.loads(credentials["cache"])
    assert cache["RefreshToken"]
    assert cache["AccessToken"]


def test_create_with_transaction_id_is_one_event_after_a_lost_answer(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = graph_connection()
    fake.faults.fail_next(1, 503, after_commit=True)
    with pytest.raises(TransientError):
        provider.create_event(make_spec())
    result = provider.create_event(make_spec())
    events = fake.live_events(OWNER)
    assert [e["id"] for e in events] == [result.external_id]
    assert events[0]["transactionId"] == make_spec().key


def test_update_with_etag_and_412_reapplies(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = graph_connection()
    created = provider.create_event(make_spec(version=1))
    provider.update_event(make_spec(version=2, summary="v2"), created.ref())
    third = provider.update_event(make_spec(version=3, summary="v3"), created.ref())  # stale etag
    assert fake.counts["update"] == 3  # v2, v3 refused with 412, v3 reapplied
    assert fake.counts["get"] == 1
    assert fake.live_events(OWNER)[0]["subject"] == "v3"
    assert third.version == 3


def test_stale_version_is_refused(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = graph_connection()
    created = provider.create_event(make_spec(version=4))
    provider.update_event(make_spec(version=5, summary="v5"), created.ref())
    with pytest.raises(StaleVersionError):
        provider.update_event(make_spec(version=4, summary="late"), created.ref())
    assert fake.live_events(OWNER)[0]["subject"] == "v5"


def test_cancel_and_cancel_again(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = graph_connection()
    created = provider.create_event(make_spec())
    provider.cancel_event(created.ref())
    provider.cancel_event(created.ref())
    assert fake.live_events(OWNER) == []
    with pytest.raises(EventGoneError):
        provider.update_event(make_spec(version=2), created.ref())


def test_cancel_without_a_stored_id_finds_the_event_by_transaction_id(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    """A crash between create and recording its id must not leave an orphan event."""
    provider, _ = graph_connection()
    provider.create_event(make_spec())
    provider.cancel_event(EventRef(make_spec().key))
    assert fake.live_events(OWNER) == []


def test_expired_token_refreshes_and_saves_the_cache(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, saved = graph_connection()
    provider.create_event(make_spec(meeting=1))
    tokens_before = fake.counts["token"]
    fake.expire_access_tokens()
    provider.create_event(make_spec(meeting=2))
    assert fake.counts["token"] == tokens_before + 1
    assert len(saved) == 2
    assert saved[-1]["cache"] != saved[0]["cache"]
    assert saved[-1]["home_account_id"] == saved[0]["home_account_id"]
    assert len(fake.live_events(OWNER)) == 2


def test_a_saved_cache_opens_a_working_provider(
    fake: FakeGraph,
    graph_fake: tuple[FakeGraph, int],
    graph_connection: Connect,
    graph_settings: CalendarSettings,
    make_spec: MakeSpec,
) -> None:
    _, saved = graph_connection()
    fake.expire_access_tokens()
    reopened = open_provider(
        saved[-1], settings=graph_settings, http_client=LoopbackSession(graph_fake[1])
    )
    with reopened:
        reopened.create_event(make_spec())
    assert len(fake.live_events(OWNER)) == 1


def test_a_shared_http_cache_fetches_the_authority_metadata_once(
    fake: FakeGraph,
    graph_fake: tuple[FakeGraph, int],
    graph_connection: Connect,
    graph_settings: CalendarSettings,
    make_spec: MakeSpec,
) -> None:
    _, saved = graph_connection()
    http_cache: dict[str, Any] = {}
    before = fake.counts["openid-configuration"]
    for meeting in (1, 2, 3):
        provider = open_provider(
            saved[-1],
            settings=graph_settings,
            http_client=LoopbackSession(graph_fake[1]),
            http_cache=http_cache,
        )
        with provider:
            provider.create_event(make_spec(meeting=meeting))
    assert fake.counts["openid-configuration"] == before + 1


def test_revoked_refresh_token_surfaces_as_auth_revoked(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = graph_connection()
    fake.revoke(OWNER)
    with pytest.raises(AuthRevokedError) as caught:
        provider.create_event(make_spec())
    assert caught.value.reason == "invalid_grant"


def test_429_honours_retry_after_in_seconds_and_as_a_date(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = graph_connection()
    fake.faults.fail_next(1, 429, retry_after=17)
    with pytest.raises(RateLimitedError) as caught:
        provider.create_event(make_spec())
    assert caught.value.retry_after == 17.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    fake.faults.fail_next(1, 429, retry_after=later)
    with pytest.raises(RateLimitedError) as caught:
        provider.create_event(make_spec())
    assert caught.value.retry_after is not None
    assert 100 < caught.value.retry_after <= 120


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (503, "ServiceNotAvailable", TransientError),
        (504, "UnknownError", TransientError),
        (403, "ErrorAccessDenied", AuthRevokedError),
        (400, "ErrorInvalidRequest", ProviderError),
    ],
)
def test_other_failures_are_classified(
    fake: FakeGraph,
    graph_connection: Connect,
    make_spec: MakeSpec,
    status: int,
    code: str,
    expected: type[Exception],
) -> None:
    provider, _ = graph_connection()
    fake.faults.fail_next(1, status, code)
    with pytest.raises(expected):
        provider.create_event(make_spec())


def test_batch_splits_at_20_and_reports_a_429_inside(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = graph_connection()
    operations = [Operation.create(make_spec(meeting=n)) for n in range(25)]
    fake.faults.fail_next(2, 429, retry_after=9, scope="batch_item")
    outcomes = provider.run_batch(operations)
    assert fake.counts["batch"] == 2
    failed = [o for o in outcomes if not o.ok]
    assert len(failed) == 2
    assert all(isinstance(o.error, RateLimitedError) for o in failed)
    assert {o.error.retry_after for o in failed if isinstance(o.error, RateLimitedError)} == {9.0}
    assert all(o.ok for o in provider.run_batch([o.operation for o in failed]))
    assert len(fake.live_events(OWNER)) == 25


def test_token_revoked_mid_run_fails_every_item_of_the_batch_as_auth_revoked(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = graph_connection()
    provider.create_event(make_spec(meeting=1))
    fake.revoke(OWNER)
    outcomes = provider.run_batch([Operation.create(make_spec(meeting=n)) for n in (2, 3)])
    assert all(isinstance(o.error, AuthRevokedError) for o in outcomes)
    assert len(fake.live_events(OWNER)) == 1


def test_health_check(fake: FakeGraph, graph_connection: Connect) -> None:
    provider, _ = graph_connection()
    assert isinstance(provider, SupportsHealthCheck)
    provider.check_connection()
    fake.revoke(OWNER)
    with pytest.raises(AuthRevokedError):
        provider.check_connection()


def test_batch_updates_and_cancels(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = graph_connection()
    first = provider.create_event(make_spec(meeting=1))
    second = provider.create_event(make_spec(meeting=2))
    outcomes = provider.run_batch(
        [
            Operation.update(make_spec(meeting=1, version=2, summary="moved"), first.ref()),
            Operation.cancel(second.ref()),
            Operation.cancel(EventRef(event_key(99, 1), external_id="AAMkAGgone")),
        ]
    )
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert [e["subject"] for e in fake.live_events(OWNER)] == ["moved"]


def test_batch_update_with_a_stale_etag_reapplies_but_never_downgrades(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = graph_connection()
    one = provider.create_event(make_spec(meeting=1, version=1))
    two = provider.create_event(make_spec(meeting=2, version=1))
    provider.update_event(make_spec(meeting=1, version=2, summary="one v2"), one.ref())
    provider.update_event(make_spec(meeting=2, version=4, summary="two v4"), two.ref())
    outcomes = provider.run_batch(
        [
            Operation.update(make_spec(meeting=1, version=3, summary="one v3"), one.ref()),
            Operation.update(make_spec(meeting=2, version=3, summary="two v3"), two.ref()),
        ]
    )
    assert outcomes[0].ok
    assert isinstance(outcomes[1].error, StaleVersionError)
    assert sorted(e["subject"] for e in fake.live_events(OWNER)) == ["one v3", "two v4"]


def test_teams_link_and_free_busy(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = graph_connection()
    created = provider.create_event(make_spec(virtual=VirtualKind.GENERATE))
    assert created.conference_url
    assert "teams.microsoft.com" in created.conference_url
    day = datetime(2026, 3, 6, tzinfo=UTC)
    busy = provider.free_busy(day, day + timedelta(days=1))
    assert [(b.start, b.end) for b in busy[OWNER]] == [
        (datetime(2026, 3, 6, 15, 0, tzinfo=UTC), datetime(2026, 3, 6, 15, 30, tzinfo=UTC))
    ]


def test_get_schedule_busy_statuses_and_no_private_details(
    fake: FakeGraph, graph_connection: Connect, graph_fake: tuple[FakeGraph, int]
) -> None:
    provider, _ = graph_connection()
    at = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    hour = timedelta(hours=1)
    fake.add_event(OWNER, at, at + hour, "Tumour board", sensitivity="private")
    fake.add_event(OWNER, at + 2 * hour, at + 3 * hour, "Lunch", show_as="free")
    fake.add_event(OWNER, at + 3 * hour, at + 4 * hour, "Maybe", show_as="tentative")
    fake.add_event(OWNER, at + 5 * hour, at + 6 * hour, "Offsite", show_as="workingElsewhere")
    fake.add_event(OWNER, at + 6 * hour, at + 7 * hour, "Leave", show_as="oof")
    busy = provider.free_busy(at, at + 8 * hour)
    assert [(b.start, b.end) for b in busy[OWNER]] == [
        (at, at + hour),
        (at + 3 * hour, at + 4 * hour),
        (at + 6 * hour, at + 7 * hour),
    ]
    # What Graph itself answers: a merged view, and no subject on the private item.
    token = provider._tokens.token()
    answer = requests.post(
        f"http://127.0.0.1:{graph_fake[1]}/v1.0/me/calendar/getSchedule",
        json={
            "schedules": [OWNER],
            "startTime": {"dateTime": "2026-03-09T09:00:00", "timeZone": "UTC"},
            "endTime": {"dateTime": "2026-03-09T17:00:00", "timeZone": "UTC"},
            "availabilityViewInterval": 60,
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()["value"][0]
    assert answer["availabilityView"] == "20010030"
    assert "subject" not in answer["scheduleItems"][0]
    assert answer["scheduleItems"][0]["isPrivate"] is True


def test_get_schedule_faults_come_back_as_the_neutral_errors(
    fake: FakeGraph, graph_connection: Connect
) -> None:
    provider, _ = graph_connection()
    at = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    fake.faults.fail_next(1, 429, retry_after=11)
    with pytest.raises(RateLimitedError) as limited:
        provider.free_busy(at, at + timedelta(hours=1))
    assert limited.value.retry_after == 11
    fake.expire_access_tokens()  # a 401: MSAL refreshes once and the request is repeated
    assert provider.free_busy(at, at + timedelta(hours=1)) == {OWNER: []}
    fake.revoke(OWNER)
    fake.expire_access_tokens()
    with pytest.raises(AuthRevokedError):
        provider.free_busy(at, at + timedelta(hours=1))


def test_times_go_to_graph_in_utc_across_dst(
    fake: FakeGraph, graph_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = graph_connection()
    new_york = ZoneInfo("America/New_York")
    for meeting, day in enumerate(
        (datetime(2026, 3, 6, 10, tzinfo=NEW_YORK), datetime(2026, 3, 13, 10, tzinfo=NEW_YORK))
    ):
        provider.create_event(make_spec(meeting=meeting, start=day.replace(tzinfo=new_york)))
    starts = sorted(e["start"]["dateTime"] for e in fake.live_events(OWNER))
    assert starts == ["2026-03-06T15:00:00", "2026-03-13T14:00:00"]


def test_app_only_mode_uses_the_users_path(
    fake: FakeGraph,
    graph_fake: tuple[FakeGraph, int],
    graph_settings: CalendarSettings,
    make_spec: MakeSpec,
) -> None:
    provider = open_provider(
        {"mode": "application", "user": "faculty@example.edu"},
        settings=graph_settings,
        http_client=LoopbackSession(graph_fake[1]),
    )
    with provider:
        provider.create_event(make_spec())
    assert len(fake.live_events("faculty@example.edu")) == 1


def test_scopes_follow_the_configured_national_cloud() -> None:
    settings = CalendarSettings(
        microsoft_authority="https://login.microsoftonline.us/tenant",
        microsoft_graph_root="https://graph.microsoft.us/v1.0",
    )
    assert delegated_scopes(settings) == ["https://graph.microsoft.us/Calendars.ReadWrite"]
    assert app_scopes(settings) == ["https://graph.microsoft.us/.default"]


def test_an_app_connection_without_a_mailbox_is_refused_before_any_request(
    graph_fake: tuple[FakeGraph, int], graph_settings: CalendarSettings
) -> None:
    fake, _ = graph_fake
    with pytest.raises(ProviderError, match="'user' mailbox"):
        open_provider({"mode": "application"}, settings=graph_settings)
    assert fake.counts["http"] == 0
