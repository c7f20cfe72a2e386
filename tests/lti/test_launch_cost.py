"""What a returning person's launch costs, and the registrations a web process remembers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import delete, event, select, update
from sqlalchemy.orm import Session

from plugin.db import get_db
from plugin.devplatform.signer import DevPlatform
from plugin.lti import registration_cache, registrations
from plugin.lti.registration_cache import GENERATION_KEY
from plugin.lti.registrations import PlatformInput, add_platform, remove_platform
from plugin.models import Deployment, Platform
from tests.lti.conftest import LAUNCH_URL, Browser, KeysetServer, home_path

pytestmark = pytest.mark.usefixtures("app")


@contextmanager
def statements_to(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app sends inside the block."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()))

    engine = get_db(app).engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _launch(agent: Browser, lms: DevPlatform) -> Any:
    login = agent.login(lms)
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    return agent.launch(lms.sign(claims), login.state)


def _logged_in(agent: Browser, lms: DevPlatform) -> Callable[[], Any]:
    """A login done now, whose launch is posted when the returned function is called."""
    login = agent.login(lms)
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    token = lms.sign(claims)
    return lambda: agent.launch(token, login.state)


def _reason(response: Any) -> str:
    page = response.get_data(as_text=True)
    assert ", reason " in page, page
    return str(page.split(", reason ", 1)[1].split(")", 1)[0])


def test_a_returning_persons_launch_reads_its_rows_in_one_query(
    app: Flask, agent: Browser, lms: DevPlatform
) -> None:
    assert _launch(agent, lms).status_code == 200
    login = agent.login(lms)  # the login step reads the platform; the launch need not
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    with statements_to(app) as sent:
        assert agent.launch(lms.sign(claims), login.state).status_code == 200
    queries = [s for s in sent if s.upper().startswith("SELECT")]
    # The registration comes from the process's memory; person, course, membership and
    # the program the link opens come in one query; nothing is written.
    assert len(queries) == 1, queries
    assert "FROM platform" not in queries[0]
    assert not [s for s in sent if s.upper().startswith(("INSERT", "UPDATE", "DELETE"))]


def _remove_behind_the_process(app: Flask, lms: DevPlatform) -> None:
    # What another process (`preceptor platform remove`) does, unseen by this one's memory.
    with get_db(app).session() as other:
        platform_id = other.scalar(select(Platform.id).where(Platform.issuer == lms.issuer))
        other.execute(delete(Deployment).where(Deployment.platform_id == platform_id))
        other.execute(delete(Platform).where(Platform.id == platform_id))
        other.commit()


def test_a_platform_removed_elsewhere_is_refused_at_the_next_launch(
    app: Flask, agent: Browser, lms: DevPlatform, redis_conn: Redis
) -> None:
    assert _launch(agent, lms).status_code == 200
    launch = _logged_in(agent, lms)
    _remove_behind_the_process(app, lms)
    redis_conn.incr(GENERATION_KEY)  # the removal's commit moves the generation
    response = launch()
    assert response.status_code == 403
    assert _reason(response) == "iss_unknown"


def test_without_a_generation_change_memory_is_trusted_for_its_ttl_only(
    app: Flask, agent: Browser, lms: DevPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A row changed by hand in the database (no generation bump): the documented bound.
    assert _launch(agent, lms).status_code == 200
    with get_db(app).session() as other:
        other.execute(
            update(Platform)
            .where(Platform.issuer == lms.issuer)
            .values(key_set_url="http://127.0.0.1:9/nothing-listens-here")
        )
        other.commit()
    assert _launch(agent, lms).status_code == 200  # remembered rows (for at most LOCAL_TTL)
    monkeypatch.setattr(registration_cache, "LOCAL_TTL", 0.0)
    registration_cache.registration_cache(app).forget()
    response = _launch(agent, lms)
    assert (response.status_code, _reason(response)) == (401, "keyset_unreachable")


def test_removing_a_platform_moves_the_generation_after_commit_only(
    lms: DevPlatform, session: Session, redis_conn: Redis
) -> None:
    before = redis_conn.get(GENERATION_KEY)
    platform = session.scalars(select(Platform).where(Platform.issuer == lms.issuer)).one()
    remove_platform(session, platform)
    assert redis_conn.get(GENERATION_KEY) == before  # not committed yet
    session.rollback()
    assert redis_conn.get(GENERATION_KEY) == before  # rolled back: nothing changed
    platform = session.scalars(select(Platform).where(Platform.issuer == lms.issuer)).one()
    remove_platform(session, platform)
    session.commit()
    assert int(redis_conn.get(GENERATION_KEY) or 0) == int(before or 0) + 1


def test_a_platform_registered_again_with_new_keys_is_checked_against_the_new_ones(
    app: Flask,
    agent: Browser,
    lms: DevPlatform,
    keyset_server: KeysetServer,
    redis_conn: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _launch(agent, lms).status_code == 200
    launch = _logged_in(agent, lms)
    # (The other process's commit cannot reach this process's memory, only Redis.)
    monkeypatch.setattr(registrations, "registrations_changed", lambda _session: None)
    # Another process removes the registration and adds it again with another keyset URL
    # and keys; this process still remembers the old rows.
    renewed = DevPlatform(
        issuer=lms.issuer, client_id=lms.client_id, deployment_id=lms.deployment_id
    )
    keyset_server.keysets["renewed"] = renewed.jwks()
    _remove_behind_the_process(app, lms)
    with get_db(app).session() as other:
        add_platform(
            other,
            PlatformInput(
                issuer=lms.issuer,
                client_id=lms.client_id,
                auth_login_url="https://canvas.example.edu/api/lti/authorize_redirect",
                auth_token_url="https://canvas.example.edu/login/oauth2/token",
                key_set_url=keyset_server.url("renewed"),
                deployment_ids=(lms.deployment_id,),
            ),
            allow_http_loopback=True,
        )
        other.commit()
    redis_conn.incr(GENERATION_KEY)
    # Signed with the old key: refused, though the remembered rows would have accepted it.
    response = launch()
    assert (response.status_code, _reason(response)) == (401, "kid_unknown")
    assert _launch(agent, renewed).status_code == 200


def test_a_returning_launch_on_a_real_database_reads_on_the_db_api_and_still_sees_changes(
    make_app: Callable[..., Flask],
    fresh_database_url: str,
    redis_url: str,
    keyset_server: KeysetServer,
) -> None:
    # The app fixture runs every session inside one test transaction, so launches there read
    # through the session; on a real database the returning launch's read goes to the
    # DB-API outside any transaction (plugin.db.OneRowRead). Same verdicts either way.
    from plugin.migrate import upgrade
    from plugin.models import User

    real = make_app(database_url=fresh_database_url, redis_url=redis_url)
    database = get_db(real)
    upgrade(database.engine)
    lms = DevPlatform(issuer="https://real.example.edu", client_id="c-1", deployment_id="d-1")
    keyset_server.keysets["real"] = lms.jwks()
    with real.app_context(), database.session() as session:
        add_platform(
            session,
            PlatformInput(
                issuer=lms.issuer,
                client_id=lms.client_id,
                auth_login_url=f"{lms.issuer}/api/lti/authorize_redirect",
                auth_token_url=f"{lms.issuer}/login/oauth2/token",
                key_set_url=keyset_server.url("real"),
                deployment_ids=(lms.deployment_id,),
            ),
            allow_http_loopback=True,
        )
        session.commit()
    agent = Browser(real.test_client())

    def logged_in(name: str) -> Callable[[], Any]:
        login = agent.login(lms)  # the login step reads the platform; the launch need not
        claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
        token = lms.sign({**claims, "name": name})
        return lambda: agent.launch(token, login.state)

    first = logged_in("Ana Lima")()
    assert first.status_code == 200
    launch = logged_in("Ana Lima")
    with statements_to(real) as sent:
        returning = launch()
    assert returning.status_code == 200
    assert home_path(returning) == home_path(first)
    # Nothing went through SQLAlchemy's execution: the one read was the DB-API's.
    assert sent == []
    assert logged_in("Ana Lima Souza")().status_code == 200
    with database.session() as session:
        assert session.scalars(select(User.name)).all() == ["Ana Lima Souza"]
    launch = logged_in("Ana Lima Souza")
    with statements_to(real) as sent:
        assert launch().status_code == 200
    assert sent == []
