"""The tool's signing keys: JWKS, rotation with overlap, encryption at rest."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.lti.tool_keys import (
    drop_retired_keys,
    ensure_signing_key,
    published_jwks,
    rotate_signing_key,
    signing_key,
)
from tests.test_cli import dev_env, run


def test_a_signing_key_is_made_once_and_stored_encrypted(session: Session) -> None:
    first = ensure_signing_key(session)
    assert ensure_signing_key(session).kid == first.kid
    raw = session.execute(text("SELECT private_key_pem FROM tool_key")).scalar_one()
    assert "PRIVATE KEY" not in raw
    assert first.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")


def test_jwks_endpoint_serves_a_plain_keyset(client: FlaskClient, session: Session) -> None:
    key = ensure_signing_key(session)
    session.commit()
    response = client.get("/.well-known/jwks.json")
    body = response.get_json()
    assert response.status_code == 200
    assert list(body) == ["keys"]  # {"keys": [...]}, not double-wrapped
    (jwk,) = body["keys"]
    assert jwk["kid"] == key.kid
    assert "d" not in jwk
    assert "max-age=300" in response.headers["Cache-Control"]


def test_rotation_publishes_both_keys_for_the_overlap_then_drops_the_old(session: Session) -> None:
    old = ensure_signing_key(session)
    now = utcnow()
    new = rotate_signing_key(session, timedelta(hours=72), now=now)
    assert signing_key(session) == new
    kids = [k["kid"] for k in published_jwks(session, now=now)["keys"]]
    assert kids == [new.kid, old.kid]
    assert drop_retired_keys(session, now=now + timedelta(hours=71)) == 0
    assert drop_retired_keys(session, now=now + timedelta(hours=73)) == 1
    kids = [k["kid"] for k in published_jwks(session, now=now + timedelta(hours=73))["keys"]]
    assert kids == [new.kid]


def test_keys_commands(fresh_database_url: str, tmp_path: Path) -> None:
    env = dev_env(tmp_path, PRECEPTOR_DATABASE_URL=fresh_database_url)
    assert run("db", "upgrade", env=env).returncode == 0
    assert "no keys yet" in run("keys", "list", env=env).stdout
    first = run("keys", "rotate", env=env)
    assert first.returncode == 0, first.stderr
    second = run("keys", "rotate", "--overlap-hours", "24", env=env)
    assert "previous keys stay published for 24 h" in second.stdout
    listing = run("keys", "list", env=env).stdout.splitlines()
    assert "\tsigning\t" in listing[0]
    assert "\tpublished until " in listing[1]
    assert run("keys", "rotate", "--overlap-hours", "0", env=env).returncode == 2
