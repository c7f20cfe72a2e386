"""Login state and nonces: consumed once, and a nonce spent only through its own login."""

from __future__ import annotations

from redis import Redis

from plugin.lti.state import LoginStateStore

ISS = "https://canvas.example.edu"


def _issue(store: LoginStateStore) -> tuple[str, str]:
    login = store.issue(iss=ISS, client_id="client-1", target_link_uri="https://tool.test/")
    return login.state, login.nonce


def test_a_state_is_consumed_with_its_nonce_once(redis_conn: Redis) -> None:
    store = LoginStateStore(redis_conn)
    state, nonce = _issue(store)
    login, recorded = store.consume_with_nonce(state, ISS, nonce, 60)
    assert login is not None
    assert (login.state, login.nonce, recorded) == (state, nonce, True)
    assert store.consume_with_nonce(state, ISS, nonce, 60) == (None, False)
    # The nonce is spent: a launch bringing it under another login is a replay.
    assert store.use_nonce(ISS, nonce, 60) is False


def test_a_nonce_is_not_spent_through_a_state_that_is_not_its_own(redis_conn: Redis) -> None:
    store = LoginStateStore(redis_conn)
    state, _ = _issue(store)
    _, other_nonce = _issue(store)
    login, recorded = store.consume_with_nonce(state, ISS, other_nonce, 60)
    assert login is not None
    assert recorded is False
    assert store.consume_with_nonce("no-such-state", ISS, other_nonce, 60) == (None, False)
    assert store.use_nonce(ISS, other_nonce, 60) is True  # still unspent


def test_an_empty_nonce_is_never_recorded(redis_conn: Redis) -> None:
    store = LoginStateStore(redis_conn)
    state, _ = _issue(store)
    login, recorded = store.consume_with_nonce(state, ISS, "", 60)
    assert login is not None
    assert recorded is False
