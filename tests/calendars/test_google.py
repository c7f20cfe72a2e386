"""Google Calendar provider through google-api-python-client against the fake service."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests

from plugin.calendars.errors import (
    AuthRevokedError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitedError,
    StaleVersionError,
    TransientError,
)
from plugin.calendars.google import (
    authorization_url,
    event_body,
    exchange_code,
    google_event_id,
)
from plugin.calendars.protocol import Operation, SupportsHealthCheck, run_operations
from plugin.calendars.settings import CalendarSettings
from plugin.calendars.types import EventRef, EventSpec, VirtualKind, event_key
from tests.fakes.google_calendar import FakeGoogleCalendar

Connect = Callable[..., tuple[Any, list[dict[str, Any]]]]
NEW_YORK = ZoneInfo("America/New_York")
MakeSpec = Callable[..., EventSpec]
OWNER = "mentor@example.edu"


@pytest.fixture
def fake(google_fake: tuple[FakeGoogleCalendar, str]) -> FakeGoogleCalendar:
    return google_fake[0]


def test_event_ids_are_base32hex_and_deterministic() -> None:
    key = event_key(42, 7)
    event_id = google_event_id(key)
    assert event_id == google_event_id(key)
    assert set(event_id) <= set("0123456789abcdefghijklmnopqrstuv")
    assert 5 <= len(event_id) <= 1024
    assert google_event_id(event_key(42, 8)) != event_id


def test_create_twice_is_one_event(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
    first = provider.create_event(make_spec())
    second = provider.create_event(make_spec())
    assert first.external_id == second.external_id == google_event_id(make_spec().key)
    assert len(fake.live_events(OWNER)) == 1
    assert fake.counts["insert"] == 2
    assert fake.counts["get"] == 1


def test_insert_retried_after_lost_answer_is_one_event(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    """Google made the event but the answer was a 503: the retry's 409 counts as done."""
    provider, _ = google_connection()
    fake.faults.fail_next(1, 503, after_commit=True)
    with pytest.raises(TransientError):
        provider.create_event(make_spec())
    result = provider.create_event(make_spec())
    assert [e["id"] for e in fake.live_events(OWNER)] == [result.external_id]


def test_client_library_retry_of_insert_is_one_event(
    fake: FakeGoogleCalendar,
    google_connection: Connect,
    make_spec: MakeSpec,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """execute(num_retries=N) re-POSTs after a 503; the second answer is 409 duplicate."""
    monkeypatch.setattr("googleapiclient.http.time.sleep", lambda seconds: None)
    provider, _ = google_connection(num_retries=3)
    fake.faults.fail_next(1, 503, after_commit=True)
    result = provider.create_event(make_spec())
    assert result.etag
    assert len(fake.live_events(OWNER)) == 1
    assert fake.counts["insert"] == 2


def test_recreate_after_cancel_reuses_the_deleted_id(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    """Google keeps deleted ids (409 on insert); we resurrect the event with the new version."""
    provider, _ = google_connection()
    created = provider.create_event(make_spec(version=1))
    provider.cancel_event(created.ref())
    assert fake.live_events(OWNER) == []
    again = provider.create_event(make_spec(version=3, summary="Rescheduled"))
    live = fake.live_events(OWNER)
    assert len(live) == 1
    assert live[0]["summary"] == "Rescheduled"
    assert again.version == 3


def test_update_with_etag_then_stale_etag_reapplies(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
    created = provider.create_event(make_spec(version=1))
    updated = provider.update_event(make_spec(version=2, summary="v2"), created.ref())
    assert updated.etag != created.etag
    # The stored etag is now stale (someone edited): 412, refetch, reapply.
    third = provider.update_event(make_spec(version=3, summary="v3"), created.ref())
    assert fake.counts["update"] == 3
    assert fake.counts["get"] == 1
    assert fake.live_events(OWNER)[0]["summary"] == "v3"
    assert third.version == 3


def test_stale_version_is_not_written_over_a_newer_one(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
    created = provider.create_event(make_spec(version=5, summary="v5"))
    provider.update_event(make_spec(version=6, summary="v6"), created.ref())
    with pytest.raises(StaleVersionError) as caught:
        provider.update_event(make_spec(version=5, summary="late v5"), created.ref())
    assert caught.value.remote_version == 6
    assert fake.live_events(OWNER)[0]["summary"] == "v6"


def test_cancel_deletes_and_twice_is_fine(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
    created = provider.create_event(make_spec())
    provider.cancel_event(created.ref())
    provider.cancel_event(created.ref())  # 410 deleted: already done
    provider.cancel_event(EventRef(event_key(999, 1)))  # 404: never existed, done
    assert fake.live_events(OWNER) == []
    assert fake.event(created.external_id, OWNER)["status"] == "cancelled"  # type: ignore[index]


def test_expired_access_token_refreshes_and_reports_new_credentials(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, saved = google_connection()
    provider.create_event(make_spec(meeting=1))
    fake.expire_access_tokens()
    provider.create_event(make_spec(meeting=2))
    assert fake.counts["token"] == 1
    assert len(saved) == 1
    assert saved[0]["token"] != provider.credentials["token"]
    assert saved[0]["refresh_token"] == provider.credentials["refresh_token"]
    assert len(fake.live_events(OWNER)) == 2


def test_revoked_grant_surfaces_as_auth_revoked(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
    fake.revoke(provider.credentials["refresh_token"])
    with pytest.raises(AuthRevokedError) as caught:
        provider.create_event(make_spec())
    assert caught.value.reason == "invalid_grant"


@pytest.mark.parametrize(
    ("status", "reason", "retry_after", "expected"),
    [
        (403, "rateLimitExceeded", "7", 7.0),
        (403, "userRateLimitExceeded", None, None),
        (429, "rateLimitExceeded", "30", 30.0),
    ],
)
def test_rate_limits_are_transient_with_retry_after(
    fake: FakeGoogleCalendar,
    google_connection: Connect,
    make_spec: MakeSpec,
    status: int,
    reason: str,
    retry_after: str | None,
    expected: float | None,
) -> None:
    provider, _ = google_connection()
    fake.faults.fail_next(1, status, reason, retry_after=retry_after)
    with pytest.raises(RateLimitedError) as caught:
        provider.create_event(make_spec())
    assert caught.value.retry_after == expected
    assert caught.value.reason == reason


def test_quota_exceeded_stops_instead_of_retrying(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
    fake.faults.fail_next(1, 403, "quotaExceeded")
    with pytest.raises(QuotaExhaustedError) as caught:
        provider.create_event(make_spec())
    assert not isinstance(caught.value, TransientError)


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (503, "backendError", TransientError),
        (500, "backendError", TransientError),
        (403, "insufficientPermissions", AuthRevokedError),
        (400, "invalid", ProviderError),
    ],
)
def test_other_failures_are_classified(
    fake: FakeGoogleCalendar,
    google_connection: Connect,
    make_spec: MakeSpec,
    status: int,
    reason: str,
    expected: type[Exception],
) -> None:
    provider, _ = google_connection()
    fake.faults.fail_next(1, status, reason)
    with pytest.raises(expected):
        provider.create_event(make_spec())


def test_batch_with_a_429_inside(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
    operations = [Operation.create(make_spec(meeting=n)) for n in range(5)]
    fake.faults.fail_next(1, 429, "rateLimitExceeded", retry_after="12", scope="batch_item")
    outcomes = provider.run_batch(operations)
    assert fake.counts["batch"] == 1
    failed = [o for o in outcomes if not o.ok]
    assert len(failed) == 1
    assert isinstance(failed[0].error, RateLimitedError)
    assert failed[0].error.retry_after == 12.0
    # The caller retries only what failed; the rest is not sent twice.
    retried = provider.run_batch([o.operation for o in failed])
    assert all(o.ok for o in retried)
    assert len(fake.live_events(OWNER)) == 5
    assert fake.counts["api"] == 6  # five items, then only the throttled one again


def test_batch_resolves_duplicates_and_cancels_of_gone_events(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
    existing = provider.create_event(make_spec(meeting=1))
    outcomes = run_operations(
        provider,
        [
            Operation.create(make_spec(meeting=1)),  # 409 inside the batch: adopted
            Operation.create(make_spec(meeting=2)),
            Operation.cancel(EventRef(event_key(77, 1))),  # 404 inside: already gone
        ],
    )
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert outcomes[0].result is not None
    assert outcomes[0].result.external_id == existing.external_id
    assert len(fake.live_events(OWNER)) == 2


def test_batch_update_with_a_stale_etag_reapplies_but_never_downgrades(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
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
    summaries = sorted(e["summary"] for e in fake.live_events(OWNER))
    assert summaries == ["one v3", "two v4"]


def test_batch_honours_expired_tokens(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, saved = google_connection()
    provider.create_event(make_spec(meeting=1))
    fake.expire_access_tokens()
    outcomes = provider.run_batch([Operation.create(make_spec(meeting=n)) for n in (2, 3)])
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert saved, "the refreshed token must reach the caller"


def test_token_revoked_mid_run_fails_every_item_of_the_batch_as_auth_revoked(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
    provider.create_event(make_spec(meeting=1))
    fake.revoke(provider.credentials["refresh_token"])
    outcomes = provider.run_batch([Operation.create(make_spec(meeting=n)) for n in (2, 3)])
    assert all(isinstance(o.error, AuthRevokedError) for o in outcomes)
    assert len(fake.live_events(OWNER)) == 1


def test_health_check(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
    refresh_token = provider.credentials["refresh_token"]
    assert isinstance(provider, SupportsHealthCheck)
    provider.check_connection()
    fake.revoke(refresh_token)
    with pytest.raises(AuthRevokedError):
        provider.check_connection()


def test_meet_link_is_requested_once_and_kept(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
    created = provider.create_event(make_spec(virtual=VirtualKind.GENERATE))
    assert created.conference_url
    assert created.conference_url.startswith("https://meet.google.com/")
    updated = provider.update_event(
        make_spec(version=2, virtual=VirtualKind.GENERATE), created.ref()
    )
    assert updated.conference_url == created.conference_url


def test_the_fake_validates_bodies_against_the_discovery_schema(
    google_fake: tuple[FakeGoogleCalendar, str], make_spec: MakeSpec
) -> None:
    fake, root = google_fake
    token = fake.grant()["token"]
    url = f"{root}/calendar/v3/calendars/primary/events"
    headers = {"Authorization": f"Bearer {token}"}
    good = event_body(make_spec())
    bad_field = {**good, "startTime": "2026-03-06T10:00:00"}
    bad_type = {**good, "summary": 5}
    no_end = {k: v for k, v in good.items() if k != "end"}
    for body, message in [
        (bad_field, 'Unknown name "startTime"'),
        (bad_type, "expected a string"),
        (no_end, "Missing end time."),
    ]:
        response = requests.post(url, json=body, headers=headers, timeout=10)
        assert response.status_code == 400
        assert message in response.json()["error"]["message"]
    assert requests.post(url, json=good, headers=headers, timeout=10).status_code == 200


def test_free_busy(
    fake: FakeGoogleCalendar, google_connection: Connect, make_spec: MakeSpec
) -> None:
    provider, _ = google_connection()
    provider.create_event(make_spec(meeting=1))
    cancelled = provider.create_event(
        make_spec(meeting=2, start=datetime(2026, 3, 6, 13, 0, tzinfo=ZoneInfo("America/New_York")))
    )
    provider.cancel_event(cancelled.ref())
    day = datetime(2026, 3, 6, tzinfo=UTC)
    busy = provider.free_busy(day, day + timedelta(days=1))
    assert [(b.start, b.end) for b in busy["primary"]] == [
        (datetime(2026, 3, 6, 15, 0, tzinfo=UTC), datetime(2026, 3, 6, 15, 30, tzinfo=UTC))
    ]


def test_free_busy_merges_overlaps_skips_free_time_and_refuses_other_calendars(
    fake: FakeGoogleCalendar, google_connection: Connect
) -> None:
    provider, _ = google_connection()
    at = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    fake.add_event(OWNER, at, at + timedelta(hours=1), "Clinic")
    fake.add_event(OWNER, at + timedelta(minutes=30), at + timedelta(hours=2), "Ward round")
    fake.add_event(
        OWNER, at + timedelta(hours=4), at + timedelta(hours=5), transparency="transparent"
    )
    fake.add_event("someone@example.edu", at, at + timedelta(hours=8))
    busy = provider.free_busy(at - timedelta(hours=1), at + timedelta(hours=12))
    assert [(b.start, b.end) for b in busy["primary"]] == [(at, at + timedelta(hours=2))]
    with pytest.raises(ProviderError, match="notFound"):
        provider.free_busy(at, at + timedelta(hours=1), ["someone@example.edu"])


def test_free_busy_faults_come_back_as_the_neutral_errors(
    fake: FakeGoogleCalendar, google_connection: Connect
) -> None:
    provider, _ = google_connection()
    at = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    fake.faults.fail_next(1, 429, "rateLimitExceeded", retry_after=7)
    with pytest.raises(RateLimitedError) as limited:
        provider.free_busy(at, at + timedelta(hours=1))
    assert limited.value.retry_after == 7
    refreshes = fake.counts["token"]
    fake.expire_access_tokens()  # a 401: google-auth refreshes once and asks again
    assert provider.free_busy(at, at + timedelta(hours=1)) == {"primary": []}
    assert fake.counts["token"] == refreshes + 1
    fake.revoke(provider.credentials["refresh_token"])
    fake.expire_access_tokens()
    with pytest.raises(AuthRevokedError):
        provider.free_busy(at, at + timedelta(hours=1))


@pytest.mark.parametrize(
    ("local_day", "utc_hour", "london_hour"),
    [
        # US and UK both on winter time.
        (datetime(2026, 3, 6, 10, 0, tzinfo=NEW_YORK), 15, 15),
        # US on summer time (from 8 March), UK not yet (29 March).
        (datetime(2026, 3, 13, 10, 0, tzinfo=NEW_YORK), 14, 14),
        (datetime(2026, 3, 27, 10, 0, tzinfo=NEW_YORK), 14, 14),
        # Both on summer time.
        (datetime(2026, 4, 3, 10, 0, tzinfo=NEW_YORK), 14, 15),
        # UK back on winter time (25 October), US not yet (1 November).
        (datetime(2026, 10, 30, 10, 0, tzinfo=NEW_YORK), 14, 14),
        (datetime(2026, 11, 6, 10, 0, tzinfo=NEW_YORK), 15, 15),
    ],
)
def test_weekly_ten_oclock_in_new_york_across_dst(
    fake: FakeGoogleCalendar,
    google_connection: Connect,
    make_spec: MakeSpec,
    local_day: datetime,
    utc_hour: int,
    london_hour: int,
) -> None:
    """10:00 New York stays 10:00 New York; the London participant sees the shifting hour."""
    new_york, london = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
    provider, _ = google_connection("mentee@example.co.uk")
    spec = make_spec(start=local_day.replace(tzinfo=new_york), owner_email="mentee@example.co.uk")
    provider.create_event(spec)
    stored = fake.live_events("mentee@example.co.uk")[0]
    assert stored["start"]["timeZone"] == "America/New_York"
    instant = datetime.fromisoformat(stored["start"]["dateTime"])
    assert instant.astimezone(UTC).hour == utc_hour
    assert instant.astimezone(new_york).hour == 10
    assert instant.astimezone(london).hour == london_hour


def test_oauth_helpers_ask_for_offline_access_and_exchange_the_code(
    fake: FakeGoogleCalendar, google_settings: CalendarSettings
) -> None:
    url = authorization_url(
        google_settings, redirect_uri="https://preceptor.example.edu/cb", state="s1"
    )
    query = parse_qs(urlsplit(url).query)
    assert query["access_type"] == ["offline"]
    assert query["prompt"] == ["consent"]
    assert query["state"] == ["s1"]
    assert "https://www.googleapis.com/auth/calendar.events" in query["scope"][0].split()
    credentials = exchange_code(
        google_settings,
        code=fake.authorization_code(),
        redirect_uri="https://preceptor.example.edu/cb",
    )
    assert credentials["refresh_token"]
    assert credentials["token"]
    with pytest.raises(AuthRevokedError):
        exchange_code(google_settings, code="4/used-or-forged", redirect_uri="https://x/cb")


def test_service_account_with_domain_wide_delegation(
    fake: FakeGoogleCalendar, google_settings: CalendarSettings, make_spec: MakeSpec
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from plugin.calendars.google import open_service_account_provider

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_email = "preceptor-sync@school-project.iam.gserviceaccount.com"
    fake.trust_service_account(
        client_email,
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    info = {
        "type": "service_account",
        "project_id": "school-project",
        "private_key_id": "k1",
        "private_key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "client_email": client_email,
        "client_id": "1234567890",
        "token_uri": google_settings.google_token_uri,
    }
    with open_service_account_provider(
        info, "faculty@example.edu", settings=google_settings
    ) as provider:
        provider.create_event(make_spec())
    assert len(fake.live_events("faculty@example.edu")) == 1


def test_spec_dataclass_replace_keeps_validation(make_spec: MakeSpec) -> None:
    spec = make_spec()
    with pytest.raises(ValueError, match="after start"):
        dataclasses.replace(spec, end=spec.start)
