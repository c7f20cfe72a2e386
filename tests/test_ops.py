"""Liveness, readiness and the end-to-end job canary."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient


def test_healthz_answers_without_touching_anything(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ok_when_database_migrations_and_redis_are(
    client: FlaskClient, drain_jobs: Callable[..., int]
) -> None:
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["migrations"]["ok"] is True
    assert body["checks"]["redis"] == {"ok": True}
    assert body["jobs"]["last_job_seconds_ago"] is None  # no worker has run the canary yet
    # The canary the web process queued is run by a real worker; readiness then shows it.
    assert drain_jobs() == 1
    assert client.get("/readyz").get_json()["jobs"]["last_job_seconds_ago"] >= 0


def test_readyz_queues_at_most_one_canary_per_period(
    client: FlaskClient, drain_jobs: Callable[..., int]
) -> None:
    for _ in range(5):
        client.get("/readyz")
    assert drain_jobs() == 1


def test_readyz_refuses_traffic_before_migrations(
    fresh_database_url: str, redis_url: str, make_app: Callable[..., Flask]
) -> None:
    app = make_app(database_url=fresh_database_url, redis_url=redis_url)
    response = app.test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["migrations"]["ok"] is False
    assert "preceptor db upgrade" in body["checks"]["migrations"]["error"]
    assert body["checks"]["database"] == {"ok": True}


def test_readyz_reports_an_unreachable_redis_without_leaking_its_address(
    database_url: str, make_app: Callable[..., Flask]
) -> None:
    app = make_app(database_url=database_url, redis_url="redis://:hunter2@127.0.0.1:1/0")
    response = app.test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert "hunter2" not in response.get_data(as_text=True)
    assert "jobs" not in body


def test_readyz_reports_an_unreachable_database(
    redis_url: str, make_app: Callable[..., Flask]
) -> None:
    app = make_app(
        database_url="postgresql://nobody@127.0.0.1:1/none",
        redis_url=redis_url,
        db_connect_timeout=1,
    )
    body = app.test_client().get("/readyz").get_json()
    assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert body["status"] == "unavailable"
