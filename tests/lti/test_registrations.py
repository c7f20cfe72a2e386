"""Platform registrations: validation, duplicates, removal, and the `preceptor platform` CLI."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.lti.errors import RegistrationError
from plugin.lti.registrations import (
    PlatformInput,
    add_platform,
    find_platform,
    list_platforms,
    remove_platform,
)
from plugin.models import Course, Deployment, Platform
from tests.test_cli import dev_env, run

CANVAS = PlatformInput(
    issuer="https://canvas.instructure.com",
    client_id="10000000000123",
    auth_login_url="https://sso.canvaslms.com/api/lti/authorize_redirect",
    auth_token_url="https://sso.canvaslms.com/login/oauth2/token",
    key_set_url="https://sso.canvaslms.com/api/lti/security/jwks",
    deployment_ids=("41:8865aa05b4b79b64a91a86042e43af5ea8ae79eb",),
    name="Canvas",
)


def test_a_platform_is_stored_with_its_deployments(session: Session) -> None:
    platform = add_platform(session, CANVAS)
    assert platform.issuer == "https://canvas.instructure.com"
    assert [d.deployment_id for d in platform.deployments] == list(CANVAS.deployment_ids)
    assert [p.id for p in list_platforms(session)] == [platform.id]


def test_the_same_issuer_may_hold_several_client_ids(session: Session) -> None:
    add_platform(session, CANVAS)
    add_platform(session, replace(CANVAS, client_id="10000000000999"))
    assert len(list_platforms(session)) == 2
    with pytest.raises(RegistrationError, match="several registrations"):
        find_platform(session, CANVAS.issuer)


def test_a_duplicate_registration_is_refused_and_changes_nothing(session: Session) -> None:
    add_platform(session, CANVAS)
    with pytest.raises(RegistrationError, match="already registered"):
        add_platform(session, replace(CANVAS, deployment_ids=("other",)))
    assert session.scalar(select(func.count()).select_from(Deployment)) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"issuer": "http://canvas.example.edu"}, "issuer must be an https:// URL"),
        ({"issuer": "canvas.example.edu"}, "issuer must be an https:// URL"),
        ({"key_set_url": "ftp://x/jwks"}, "keyset URL must be an https:// URL"),
        ({"auth_login_url": "http://127.0.0.1:5000/auth"}, "auth login URL must be an https://"),
        ({"client_id": "  "}, "client id is empty"),
        ({"client_id": "x" * 256}, "client id is longer than 255"),
        ({"deployment_ids": ()}, "at least one deployment id"),
        ({"deployment_ids": ("1", "1")}, "given twice"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(
    session: Session, change: dict[str, object], message: str
) -> None:
    with pytest.raises(RegistrationError, match=message):
        add_platform(session, replace(CANVAS, **change))  # type: ignore[arg-type]
    assert list_platforms(session) == []


def test_loopback_http_is_allowed_only_when_asked(session: Session) -> None:
    local = replace(
        CANVAS,
        issuer="http://127.0.0.1:5000",
        key_set_url="http://localhost/jwks",
        auth_login_url="http://127.0.0.1:5000/auth",
        auth_token_url="http://127.0.0.1:5000/token",
    )
    assert add_platform(session, local, allow_http_loopback=True).issuer == "http://127.0.0.1:5000"
    with pytest.raises(RegistrationError):
        add_platform(
            session, replace(local, issuer="http://evil.example"), allow_http_loopback=True
        )


def test_removing_a_platform_removes_its_courses(session: Session) -> None:
    platform = add_platform(session, CANVAS)
    session.add(Course(deployment=platform.deployments[0], context_id="c1"))
    session.flush()
    remove_platform(session, find_platform(session, str(platform.id)))
    assert session.scalar(select(func.count()).select_from(Course)) == 0
    assert session.scalar(select(func.count()).select_from(Platform)) == 0


ADD_CANVAS = (
    "platform",
    "add",
    "--issuer",
    CANVAS.issuer,
    "--client-id",
    CANVAS.client_id,
    "--auth-url",
    CANVAS.auth_login_url,
    "--token-url",
    CANVAS.auth_token_url,
    "--keyset-url",
    CANVAS.key_set_url,
)


def test_platform_commands_end_to_end(fresh_database_url: str, tmp_path: Path) -> None:
    env = dev_env(tmp_path, PRECEPTOR_DATABASE_URL=fresh_database_url)
    assert run("db", "upgrade", env=env).returncode == 0
    added = run(
        *ADD_CANVAS,
        "--deployment",
        "d-1",
        "--deployment",
        "d-2",
        "--name",
        "Canvas",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("registered platform 1: https://canvas.instructure.com")
    assert "2 deployments" in added.stdout
    assert "client id 10000000000123" in run("platform", "list", env=env).stdout
    shown = run("platform", "show", "1", env=env).stdout
    assert "deployments: d-1, d-2" in shown
    again = run(
        *ADD_CANVAS,
        "--deployment",
        "d-3",
        env=env,
    )
    assert again.returncode == 2
    assert "already registered" in again.stderr
    assert run("platform", "remove", "1", "--yes", env=env).returncode == 0
    assert "no platforms registered" in run("platform", "list", env=env).stdout
