"""The hardened launch: every refusal has its own test, and valid launches get through."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from redis import Redis
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from plugin.db import get_db
from plugin.devplatform.signer import CLAIM, MEMBERSHIP, DevPlatform
from plugin.lti import platform_keys
from plugin.lti.launch import MAX_TOKEN_AGE
from plugin.lti.state import COOKIE_STATE, STORAGE_STATE, LoginStateStore
from plugin.models import Course, CourseMembership, User
from tests.lti.conftest import LAUNCH_URL, Browser, KeysetServer, launch_token

pytestmark = pytest.mark.usefixtures("app")


def reason(response: Any) -> str:
    html = response.get_data(as_text=True)
    assert ", reason " in html, html
    return str(html.split(", reason ", 1)[1].split(")", 1)[0])


def launch_with(
    agent: Browser, lms: DevPlatform, mutate: Callable[[dict[str, Any]], None], **sign: Any
) -> Any:
    login = agent.login(lms)
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    mutate(claims)
    return agent.launch(lms.sign(claims, **sign), login.state)


# --- valid launches -----------------------------------------------------------------------


def test_a_valid_launch_lands_in_the_course(
    agent: Browser, lms: DevPlatform, session: Session
) -> None:
    person = {"name": "Ada Lovelace", "email": "ada@example.edu", "given_name": "Ada"}
    response = launch_with(agent, lms, lambda c: c.update(person))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert launch_token(response)
    user = session.scalars(select(User)).one()
    assert (user.sub, user.name, user.email) == ("user-1", "Ada Lovelace", "ada@example.edu")
    course = session.scalars(select(Course)).one()
    assert (course.context_id, course.title) == ("course-1", "Clinical Skills I")
    membership = session.scalars(select(CourseMembership)).one()
    assert membership.roles == [f"{MEMBERSHIP}Learner"]
    # The state cookie has done its job and is cleared.
    assert "lti_" in response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda c: None, id="no-personal-data"),
        pytest.param(
            lambda c: c.update({f"{CLAIM}roles": ["urn:example:role#Wizard"]}), id="unknown-roles"
        ),
        pytest.param(lambda c: c.update({f"{CLAIM}roles": []}), id="empty-roles"),
        pytest.param(lambda c: c.pop(f"{CLAIM}roles"), id="no-roles-claim"),
        pytest.param(
            lambda c: c.update({"aud": ["client-1", "other"], "azp": "client-1"}),
            id="several-audiences-with-azp",
        ),
    ],
)
def test_valid_launches_without_optional_data_are_accepted(
    agent: Browser, lms: DevPlatform, mutate: Callable[[dict[str, Any]], None]
) -> None:
    response = launch_with(agent, lms, mutate)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_launch_without_a_course_is_accepted_and_explained(
    agent: Browser, lms: DevPlatform, session: Session
) -> None:
    response = launch_with(agent, lms, lambda c: c.pop(f"{CLAIM}context"))
    assert response.status_code == 200
    assert "Open Preceptor from a course" in response.get_data(as_text=True)
    assert session.scalars(select(Course)).all() == []


@contextmanager
def writes_to(app: Flask) -> Iterator[list[str]]:
    """The INSERT, UPDATE and DELETE statements the app sends inside the block."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            statements.append(statement)

    engine = get_db(app).engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("in_course", [True, False], ids=["course", "no-course"])
def test_a_returning_persons_launch_that_changes_nothing_writes_nothing(
    app: Flask, agent: Browser, lms: DevPlatform, in_course: bool
) -> None:
    def mutate(claims: dict[str, Any]) -> None:
        claims["name"] = "Ada Lovelace"
        if not in_course:
            claims.pop(f"{CLAIM}context")

    assert launch_with(agent, lms, mutate).status_code == 200
    with writes_to(app) as writes:
        assert launch_with(agent, lms, mutate).status_code == 200
    assert writes == []


def test_a_returning_persons_changes_are_recorded(
    agent: Browser, lms: DevPlatform, session: Session
) -> None:
    assert launch_with(agent, lms, lambda c: None).status_code == 200
    membership = session.scalars(select(CourseMembership)).one()
    first_update = membership.updated_at

    def changed(claims: dict[str, Any]) -> None:
        claims.update({"name": "Ada King", f"{CLAIM}roles": [f"{MEMBERSHIP}Instructor"]})
        claims[f"{CLAIM}context"]["title"] = "Clinical Skills II"

    assert launch_with(agent, lms, changed).status_code == 200
    session.expire_all()
    user = session.scalars(select(User)).one()
    course = session.scalars(select(Course)).one()
    membership = session.scalars(select(CourseMembership)).one()
    assert (user.name, course.title) == ("Ada King", "Clinical Skills II")
    assert membership.roles == [f"{MEMBERSHIP}Instructor"]
    assert membership.updated_at >= first_update


# --- refusals, one rule each --------------------------------------------------------------


def _drop(claim: str) -> Callable[[dict[str, Any]], None]:
    return lambda c: c.pop(claim)


def _set(claim: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda c: c.update({claim: value})


CLAIM_DEFECTS = [
    ("iss-unknown", _set("iss", "https://stranger.example.edu"), "iss_unknown", 403),
    ("aud-wrong", _set("aud", "someone-else"), "aud_mismatch", 401),
    ("aud-several-no-azp", _set("aud", ["client-1", "other"]), "azp_mismatch", 401),
    (
        "azp-not-in-aud",
        lambda c: c.update({"aud": ["client-1", "x"], "azp": "y"}),
        "azp_mismatch",
        401,
    ),
    ("azp-differs", _set("azp", "someone-else"), "azp_mismatch", 401),
    ("exp-missing", _drop("exp"), "exp_missing", 401),
    ("iat-missing", _drop("iat"), "iat_missing", 401),
    ("expired", lambda c: c.update({"exp": int(time.time()) - 120}), "token_expired", 401),
    (
        "iat-in-future",
        lambda c: c.update({"iat": int(time.time()) + 600, "exp": int(time.time()) + 700}),
        "iat_in_future",
        401,
    ),
    (
        "too-old",
        lambda c: c.update(
            {"iat": int(time.time()) - MAX_TOKEN_AGE - 60, "exp": int(time.time()) + 60}
        ),
        "token_too_old",
        401,
    ),
    ("nonce-missing", _drop("nonce"), "nonce_missing", 401),
    ("nonce-not-from-login", _set("nonce", "made-up"), "nonce_mismatch", 401),
    ("deployment-unknown", _set(f"{CLAIM}deployment_id", "elsewhere"), "deployment_unknown", 403),
    ("deployment-missing", _drop(f"{CLAIM}deployment_id"), "deployment_unknown", 403),
    ("version-1.1", _set(f"{CLAIM}version", "1.1"), "version_unsupported", 400),
    (
        "message-type-unknown",
        _set(f"{CLAIM}message_type", "LtiStartProctoring"),
        "message_type_unknown",
        400,
    ),
    (
        "target-link-foreign",
        _set(f"{CLAIM}target_link_uri", "https://evil.example/lti/launch"),
        "target_link_uri_foreign",
        403,
    ),
    ("sub-missing", _drop("sub"), "sub_missing", 400),
    ("sub-blank", _set("sub", "  "), "sub_missing", 400),
    ("resource-link-missing", _drop(f"{CLAIM}resource_link"), "resource_link_missing", 400),
    (
        "resource-link-without-id",
        _set(f"{CLAIM}resource_link", {"title": "x"}),
        "resource_link_missing",
        400,
    ),
]


@pytest.mark.parametrize(
    ("mutate", "code", "status"), [pytest.param(m, c, s, id=i) for i, m, c, s in CLAIM_DEFECTS]
)
def test_a_claim_defect_is_refused_with_its_reason(
    agent: Browser,
    lms: DevPlatform,
    session: Session,
    mutate: Callable[[dict[str, Any]], None],
    code: str,
    status: int,
) -> None:
    response = launch_with(agent, lms, mutate)
    assert response.status_code == status
    assert reason(response) == code
    assert "Traceback" not in response.get_data(as_text=True)
    assert session.scalars(select(User)).all() == []  # a refused launch records nothing


def test_missing_id_token_is_refused(agent: Browser, lms: DevPlatform) -> None:
    login = agent.login(lms)
    response = agent.launch("", login.state)
    assert (response.status_code, reason(response)) == (400, "id_token_missing")


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "e30.e30"])
def test_malformed_id_token_is_refused(agent: Browser, lms: DevPlatform, token: str) -> None:
    login = agent.login(lms)
    response = agent.launch(token, login.state)
    assert (response.status_code, reason(response)) == (400, "id_token_malformed")


def test_alg_none_is_refused(agent: Browser, lms: DevPlatform) -> None:
    login = agent.login(lms)
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    token = jwt.encode(claims, None, algorithm="none", headers={"kid": lms.kid})  # type: ignore[arg-type]
    assert reason(agent.launch(token, login.state)) == "alg_not_allowed"


def test_hs256_signed_with_the_public_key_is_refused(agent: Browser, lms: DevPlatform) -> None:
    # The classic confusion attack: the platform's public key used as an HMAC secret.
    login = agent.login(lms)
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    # PyJWT refuses to sign this, so forge it by hand as an attacker would.
    public_pem = lms.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': lms.kid})}.{part(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert reason(agent.launch(token, login.state)) == "alg_not_allowed"


def test_missing_kid_is_refused(agent: Browser, lms: DevPlatform) -> None:
    login = agent.login(lms)
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    token = jwt.encode(claims, lms.private_key, algorithm="RS256")
    assert reason(agent.launch(token, login.state)) == "kid_missing"


def test_unknown_kid_refetches_the_keyset_once_then_refuses(
    agent: Browser, lms: DevPlatform, keyset_server: KeysetServer
) -> None:
    for _ in range(3):
        response = launch_with(agent, lms, lambda c: None, headers={"kid": "no-such-key"})
        assert reason(response) == "kid_unknown"
    # One fetch to fill the cache, one re-fetch for the unknown kid, then no more.
    assert keyset_server.fetches["canvas"] == 2


def test_rotated_platform_key_is_picked_up_by_the_refetch(
    agent: Browser, lms: DevPlatform, keyset_server: KeysetServer
) -> None:
    assert launch_with(agent, lms, lambda c: None).status_code == 200  # keyset now cached
    rotated = DevPlatform(
        issuer=lms.issuer, client_id=lms.client_id, deployment_id=lms.deployment_id
    )
    keyset_server.keysets["canvas"] = {"keys": lms.jwks()["keys"] + rotated.jwks()["keys"]}
    assert launch_with(agent, rotated, lambda c: None).status_code == 200


def test_a_process_reuses_a_keyset_it_read_recently(
    agent: Browser,
    lms: DevPlatform,
    keyset_server: KeysetServer,
    redis_conn: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert launch_with(agent, lms, lambda c: None).status_code == 200
    assert keyset_server.fetches["canvas"] == 1
    # Gone from Redis: this process still has the document it read (LOCAL_TTL) ...
    redis_conn.delete(*redis_conn.keys("preceptor:lti:jwks:*"))
    assert launch_with(agent, lms, lambda c: None).status_code == 200
    assert keyset_server.fetches["canvas"] == 1
    # ... and once that has expired, the keyset is read (here: fetched) again.
    monkeypatch.setattr(platform_keys, "LOCAL_TTL", 0.0)
    platform_keys._recent.clear()
    assert launch_with(agent, lms, lambda c: None).status_code == 200
    assert keyset_server.fetches["canvas"] == 2
    assert launch_with(agent, lms, lambda c: None).status_code == 200  # from Redis
    assert keyset_server.fetches["canvas"] == 2


def test_wrong_signature_is_refused(agent: Browser, lms: DevPlatform) -> None:
    impostor = DevPlatform(issuer=lms.issuer)
    response = launch_with(agent, lms, lambda c: None, key=impostor.private_key)
    assert reason(response) == "bad_signature"


def test_missing_state_is_refused(agent: Browser, lms: DevPlatform) -> None:
    login = agent.login(lms)
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    response = agent.launch(lms.sign(claims), "")
    assert (response.status_code, reason(response)) == (400, "state_missing")


def test_state_not_issued_here_is_refused(agent: Browser, lms: DevPlatform) -> None:
    login = agent.login(lms)
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    assert reason(agent.launch(lms.sign(claims), "forged-state")) == "state_unknown"


def test_state_from_another_platforms_login_is_refused(
    agent: Browser, lms: DevPlatform, register_platform: Callable[..., DevPlatform]
) -> None:
    moodle = register_platform("moodle", client_id="m-1", deployment_id="m-d")
    login = agent.login(moodle)
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    assert reason(agent.launch(lms.sign(claims), login.state)) == "state_mismatch"


def test_launch_from_another_browser_than_the_login_is_refused(
    agent: Browser, new_agent: Callable[[], Browser], lms: DevPlatform
) -> None:
    login = agent.login(lms)
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    response = new_agent().launch(lms.sign(claims), login.state)
    html = response.get_data(as_text=True)
    # Refused, and offered the one way that works when a browser blocks both cookies and
    # platform storage in frames: the same login again, in a window of its own.
    assert response.status_code == 401
    assert "Open Preceptor in a new window" in html
    assert 'target="_blank"' in html
    assert "/lti/login?iss=https%3A%2F%2Fcanvas.example.edu&amp;client_id=client-1" in html
    assert "login_hint=hint-1" in html
    # The stolen state is spent: the same post cannot be retried anywhere.
    assert reason(agent.launch(lms.sign(claims), login.state)) == "state_unknown"


def test_replayed_launch_is_refused(agent: Browser, lms: DevPlatform) -> None:
    login = agent.login(lms)
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    token = lms.sign(claims)
    assert agent.launch(token, login.state).status_code == 200
    replay = agent.launch(token, login.state)
    assert replay.status_code == 401
    assert reason(replay) == "state_unknown"


def test_a_used_nonce_is_refused_even_under_a_fresh_state(
    agent: Browser, lms: DevPlatform, redis_conn: Redis
) -> None:
    first = agent.login(lms)
    claims = lms.resource_link_claims(nonce=first.nonce, target_link_uri=LAUNCH_URL)
    assert agent.launch(lms.sign(claims), first.state).status_code == 200
    # A second login whose state record carries the already-used nonce (a platform that
    # repeats nonces, or a stolen state): the nonce rule still refuses it.
    second = agent.login(lms)
    key = f"preceptor:lti:state:{second.state}"
    record = json.loads(redis_conn.get(key))  # type: ignore[arg-type]
    record["nonce"] = first.nonce
    redis_conn.set(key, json.dumps(record), ex=600)
    response = agent.launch(lms.sign(claims), second.state)
    assert reason(response) == "nonce_replayed"


# --- login --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"iss": "https://stranger.example.edu"}, 403, "iss_unknown"),
        ({"login_hint": ""}, 400, "login_incomplete"),
        ({"target_link_uri": "https://evil.example/lti/launch"}, 400, "target_link_uri_foreign"),
    ],
)
def test_login_refuses_what_it_cannot_honour(
    agent: Browser, lms: DevPlatform, params: dict[str, str], status: int, code: str
) -> None:
    query = {
        "iss": lms.issuer,
        "login_hint": "h",
        "target_link_uri": LAUNCH_URL,
        "client_id": lms.client_id,
        **params,
    }
    response = agent.client.get("/lti/login", query_string=query, base_url="https://tool.test")
    assert (response.status_code, reason(response)) == (status, code)


def test_login_redirects_to_the_platform_with_a_bound_state(
    agent: Browser, lms: DevPlatform
) -> None:
    login = agent.login(lms, lti_message_hint="msg-7")
    assert login.redirect.startswith("https://canvas.example.edu/api/lti/authorize_redirect?")
    for part in (
        "response_mode=form_post",
        "prompt=none",
        "scope=openid",
        "lti_message_hint=msg-7",
        "client_id=client-1",
    ):
        assert part in login.redirect
    cookie = agent.client.get_cookie(f"lti_{login.state[:16]}", domain="tool.test", path="/lti/")
    assert cookie is not None
    assert cookie.secure
    assert cookie.http_only
    assert cookie.same_site == "None"


def test_a_cookie_launch_goes_straight_to_validation(
    agent: Browser, lms: DevPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A login without platform storage marks its state so; its launch does not read the
    # stored login first (that read is only for the platform-storage step).
    login = agent.login(lms)
    assert login.state.startswith(COOKIE_STATE)

    def no_peek(*_args: Any) -> None:
        raise AssertionError("a cookie-only launch looked the login up before validation")

    monkeypatch.setattr(LoginStateStore, "peek", no_peek)
    claims = lms.resource_link_claims(nonce=login.nonce, target_link_uri=LAUNCH_URL)
    assert agent.launch(lms.sign(claims), login.state).status_code == 200


def test_a_platform_storage_launch_first_reads_the_secret_back_from_storage(
    agent: Browser, lms: DevPlatform
) -> None:
    response = agent.client.get(
        "/lti/login",
        query_string={
            "iss": lms.issuer,
            "login_hint": "hint-1",
            "target_link_uri": LAUNCH_URL,
            "client_id": lms.client_id,
            "lti_storage_target": "_parent",
        },
        base_url="https://tool.test",
    )
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    auth = parse_qs(urlsplit(page.split('data-next="', 1)[1].split('"', 1)[0]).query)
    state, nonce = auth["state"][0], auth["nonce"][0]
    secret = page.split('data-value="', 1)[1].split('"', 1)[0]
    assert state.startswith(STORAGE_STATE)
    id_token = lms.sign(lms.resource_link_claims(nonce=nonce, target_link_uri=LAUNCH_URL))
    first = agent.launch(id_token, state)
    assert 'data-mode="get"' in first.get_data(as_text=True)
    second = agent.client.post(
        "/lti/launch",
        data={"id_token": id_token, "state": state, "lti_storage_value": secret},
        base_url="https://tool.test",
    )
    assert second.status_code == 200
    assert launch_token(second)
