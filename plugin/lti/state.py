"""OIDC login state and nonces, in Redis so any number of web processes agree.

A state is issued at login and consumed (deleted) by the launch that uses it; a nonce is
recorded when a launch uses it and refused ever after, for as long as its token lives.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from typing import Final, cast

from redis import Redis

__all__ = [
    "COOKIE_STATE",
    "STORAGE_STATE",
    "ConsumedLaunch",
    "LoginState",
    "LoginStateStore",
    "offered_storage",
]

#: Seconds between login and launch a person may take (the platform's login page included).
STATE_TTL: Final = 600
_PREFIX: Final = "preceptor:lti"
#: Every state starts with one of these, saying whether its login offered LTI platform
#: storage: the launch of a cookie-only login then needs no look at the stored login before
#: validation (one Redis round trip less on most launches).
STORAGE_STATE: Final = "s."
COOKIE_STATE: Final = "c."


def offered_storage(state: str) -> bool:
    """Whether the login behind ``state`` may have offered platform storage (unknown: yes)."""
    return not state.startswith(COOKIE_STATE)


@dataclass(frozen=True)
class LoginState:
    """What the login step promised the launch step."""

    state: str
    nonce: str
    iss: str
    client_id: str
    target_link_uri: str
    #: Set as a cookie (or kept in platform storage); proves the launch is the same browser.
    browser_secret: str
    #: The platform's storage frame name when it offers LTI platform storage, else "".
    storage_target: str = ""
    #: The login's hints, to start the same launch again in a new window if needed.
    login_hint: str = ""
    lti_message_hint: str = ""


@dataclass(frozen=True)
class ConsumedLaunch:
    """What :meth:`LoginStateStore.consume_launch` found, in its one round trip."""

    #: The login behind the state (None if unknown); the state is used up either way.
    login: LoginState | None
    #: Whether the token's nonce was recorded as used now (False: replayed, or not its login's).
    nonce_recorded: bool
    #: The value of the watched key at that moment (None if unset or none was watched).
    watched: str | None


class LoginStateStore:
    """Issues, consumes and replays-protects OIDC login state."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def issue(
        self,
        *,
        iss: str,
        client_id: str,
        target_link_uri: str,
        storage_target: str = "",
        login_hint: str = "",
        lti_message_hint: str = "",
    ) -> LoginState:
        login = LoginState(
            state=(STORAGE_STATE if storage_target else COOKIE_STATE) + secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            iss=iss,
            client_id=client_id,
            target_link_uri=target_link_uri,
            browser_secret=secrets.token_urlsafe(32),
            storage_target=storage_target,
            login_hint=login_hint,
            lti_message_hint=lti_message_hint,
        )
        self._redis.set(f"{_PREFIX}:state:{login.state}", json.dumps(asdict(login)), ex=STATE_TTL)
        return login

    def peek(self, state: str) -> LoginState | None:
        """The login behind ``state`` without using it up (for the platform-storage step)."""
        raw = cast(bytes | None, self._redis.get(f"{_PREFIX}:state:{state}"))
        return None if raw is None else LoginState(**json.loads(raw))

    def consume(self, state: str) -> LoginState | None:
        """The login behind ``state``, which can then never be used again."""
        raw = cast(bytes | None, self._redis.getdel(f"{_PREFIX}:state:{state}"))
        return None if raw is None else LoginState(**json.loads(raw))

    def use_nonce(self, iss: str, nonce: str, lifetime: int) -> bool:
        """Record a nonce as used; False if it was used before (a replay)."""
        return bool(self._redis.set(_nonce_key(iss, nonce), 1, nx=True, ex=max(lifetime, 60)))

    def consume_with_nonce(
        self, state: str, iss: str, nonce: str, lifetime: int
    ) -> tuple[LoginState | None, bool]:
        """:meth:`consume` and, if that login sent ``nonce``, :meth:`use_nonce`: one round trip.

        Returns the login (None if unknown) and whether the nonce was recorded now: False
        if it was used before (a replay) or is not this login's (then nothing is recorded,
        so a token cannot be spent through a state that is not its own).
        """
        found = self.consume_launch(state, iss, nonce, lifetime)
        return found.login, found.nonce_recorded

    def consume_launch(
        self, state: str, iss: str, nonce: str, lifetime: int, *, watch: str | None = None
    ) -> ConsumedLaunch:
        """:meth:`consume_with_nonce`, also reading the key ``watch`` in the same round trip.

        The launch watches the registrations' generation (``plugin.lti.registration_cache``)
        to learn, at no extra cost, whether a registration it read from memory has changed.
        """
        script = self._redis.register_script(_CONSUME_WITH_NONCE)
        keys = [f"{_PREFIX}:state:{state}", _nonce_key(iss, nonce)]
        raw, recorded, watched = script(
            keys=[*keys, watch] if watch else keys, args=[nonce, max(lifetime, 60)]
        )
        return ConsumedLaunch(
            login=None if raw is None else LoginState(**json.loads(raw)),
            nonce_recorded=recorded == 1,
            watched=watched.decode() if isinstance(watched, bytes) else watched,
        )


def _nonce_key(iss: str, nonce: str) -> str:
    return f"{_PREFIX}:nonce:{iss}:{nonce}"


#: GETDEL the state; SET NX EX the nonce only if the stored login sent that very nonce; and
#: GET the watched key (KEYS[3]) if one is given. Returns {login or false, 0/1, value or false}.
_CONSUME_WITH_NONCE: Final = """
local watched = false
if KEYS[3] then watched = redis.call('GET', KEYS[3]) end
local login = redis.call('GETDEL', KEYS[1])
if not login then return {false, 0, watched} end
local ok, stored = pcall(cjson.decode, login)
if not ok or type(stored) ~= 'table' or ARGV[1] == '' or stored['nonce'] ~= ARGV[1] then
  return {login, 0, watched}
end
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[2])) then
  return {login, 1, watched}
end
return {login, 0, watched}
"""
