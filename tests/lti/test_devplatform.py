"""The development LMS: only where asked for, and strict about what it signs."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from flask import Flask

from plugin.config import ConfigError, load_settings
from plugin.db import get_db
from plugin.migrate import upgrade


@pytest.fixture
def dev_app(make_app: Callable[..., Flask], fresh_database_url: str, redis_url: str) -> Flask:
    app = make_app(database_url=fresh_database_url, redis_url=redis_url, dev_platform=True)
    upgrade(get_db(app).engine)
    return app


def test_it_is_off_unless_enabled(client: object) -> None:
    from flask.testing import FlaskClient

    assert isinstance(client, FlaskClient)
    assert client.get("/dev/platform", base_url="http://localhost").status_code == 404


def test_it_cannot_be_enabled_in_production() -> None:
    with pytest.raises(ConfigError, match="PRECEPTOR_DEV_PLATFORM cannot be on in production"):
        load_settings(
            {
                "env": "production",
                "secret_key": "s" * 40,
                "dev_platform": True,
                "encryption_key": "aGVsbG8taGVsbG8taGVsbG8taGVsbG8taGVsbG8taGk=",
                "database_url": "postgresql://u@h/d",
                "redis_url": "redis://h",
            }
        )


def test_it_registers_itself_and_lives_on_the_other_host(dev_app: Flask) -> None:
    client = dev_app.test_client()
    moved = client.get("/dev/platform", base_url="http://127.0.0.1:5000")
    assert moved.status_code == 302
    assert moved.headers["Location"] == "http://localhost:5000/dev/platform"
    page = client.get("/dev/platform", base_url="http://localhost:5000")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert (
        "http://127.0.0.1:5000/lti/login?iss=http%3A%2F%2Flocalhost%3A5000%2Fdev%2Fplatform" in html
    )
    assert "frame-src 'self' http://127.0.0.1:5000" in page.headers["Content-Security-Policy"]
    keyset = client.get("/dev/platform/jwks", base_url="http://localhost:5000").get_json()
    assert len(keyset["keys"]) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"redirect_uri": "https://evil.example/lti/launch"},
        {"client_id": "someone-else"},
        {"login_hint": "nobody"},
        {"nonce": ""},
        {"response_mode": "query"},
    ],
)
def test_its_authorization_endpoint_signs_only_for_the_tool(
    dev_app: Flask, change: dict[str, str]
) -> None:
    client = dev_app.test_client()
    client.get("/dev/platform", base_url="http://localhost:5000")
    query = {
        "client_id": "preceptor-dev",
        "redirect_uri": "http://127.0.0.1:5000/lti/launch",
        "response_mode": "form_post",
        "login_hint": "student",
        "nonce": "n",
        "state": "s",
        **change,
    }
    response = client.get(
        f"/dev/platform/auth?{urlencode(query)}", base_url="http://localhost:5000"
    )
    assert response.status_code == 400
    assert "id_token" not in response.get_data(as_text=True)


def test_its_roster_service_pages_members_for_a_signed_tool_assertion(dev_app: Flask) -> None:
    import time

    import jwt

    from plugin.lti.tool_keys import ensure_signing_key

    client = dev_app.test_client()
    client.get("/dev/platform", base_url="http://localhost:5000")
    with dev_app.app_context(), get_db(dev_app).session_scope() as session:
        key = ensure_signing_key(session)
        pem, kid = key.private_key_pem, key.kid
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": "preceptor-dev",
            "sub": "preceptor-dev",
            "iat": now,
            "exp": now + 60,
            "aud": "http://localhost:5000/dev/platform/token",
            "jti": "j1",
        },
        pem,
        algorithm="RS256",
        headers={"kid": kid},
    )
    forged = jwt.encode({"iss": "preceptor-dev", "aud": "x"}, "s" * 32, algorithm="HS256")
    assert (
        client.post(
            "/dev/platform/token",
            data={"client_assertion": forged},
            base_url="http://localhost:5000",
        ).status_code
        == 401
    )
    issued = client.post(
        "/dev/platform/token",
        data={"client_assertion": assertion, "grant_type": "client_credentials"},
        base_url="http://localhost:5000",
    ).get_json()
    headers = {"Authorization": f"Bearer {issued['access_token']}"}
    first = client.get(
        "/dev/platform/nrps/dev-course-1", headers=headers, base_url="http://localhost:5000"
    )
    assert len(first.get_json()["members"]) == 3
    assert 'rel="next"' in first.headers["Link"]
    assert (
        client.get("/dev/platform/nrps/dev-course-1", base_url="http://localhost:5000").status_code
        == 401
    )
    junk = client.get(
        "/dev/platform/nrps/dev-course-1?page=abc",
        headers=headers,
        base_url="http://localhost:5000",
    )
    assert junk.status_code == 200  # junk page numbers read as page 1, never a 500
    assert junk.get_json()["members"] == first.get_json()["members"]
