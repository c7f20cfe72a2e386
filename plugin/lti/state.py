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

__all__ = ["LoginState", "LoginStateStore"]

#: Seconds between login and launch a person may take (the platform's login page included).
STATE_TTL: Final = 600
_PREFIX: Final = "preceptor:lti"


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
            state=secrets.token_urlsafe(32),
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
        key = f"{_PREFIX}:nonce:{iss}:{nonce}"
        return bool(self._redis.set(key, 1, nx=True, ex=max(lifetime, 60)))
