"""Platform public keys: fetched from the keyset URL, cached in Redis with a TTL.

A launch signed with a kid we do not know triggers one re-fetch (platforms rotate keys),
at most once per REFETCH_INTERVAL per keyset, so a stream of forged kids cannot make us
hammer a platform. Keys are shared by every web process through Redis.

Each process also keeps the keyset documents it read from Redis for LOCAL_TTL seconds, so
a launch usually costs no Redis round trip for its key. That copy is only ever a shortcut
to a key it holds: a kid it lacks is looked up in Redis (and re-fetched) as before. A key
the platform withdraws can therefore be accepted for up to LOCAL_TTL seconds longer than
Redis alone would (which already trusts a fetched keyset for KEYSET_TTL).
"""

from __future__ import annotations

import hashlib
import json
import time
from functools import lru_cache
from typing import Any, Final, cast

import jwt
import requests
from redis import Redis

from plugin.lti.errors import LaunchRefused

__all__ = ["PlatformKeys"]

#: How long a fetched keyset is trusted before it is fetched again.
KEYSET_TTL: Final = 3600
#: Minimum seconds between two re-fetches of one keyset caused by unknown kids.
REFETCH_INTERVAL: Final = 60
#: Keysets are small; anything bigger is not one.
MAX_KEYSET_BYTES: Final = 256 * 1024
FETCH_TIMEOUT: Final = 5
#: How long a process reuses a keyset document it read from Redis (see the module doc).
LOCAL_TTL: Final = 30.0
#: Keyset documents a process keeps at most (one per platform registration in use).
LOCAL_MAX: Final = 256

#: Keyset documents read from Redis by this process: cache key -> (read until, document).
_recent: dict[str, tuple[float, bytes]] = {}


def _remember(cache_key: str, document: bytes) -> None:
    if len(_recent) >= LOCAL_MAX:
        _recent.clear()
    _recent[cache_key] = (time.monotonic() + LOCAL_TTL, document)


def _recalled(cache_key: str) -> bytes | None:
    entry = _recent.get(cache_key)
    return entry[1] if entry is not None and entry[0] > time.monotonic() else None


def _find(keyset: dict[str, Any], kid: str) -> dict[str, Any] | None:
    for key in keyset.get("keys", []):
        if isinstance(key, dict) and key.get("kid") == kid:
            return key
    return None


def _public_key(jwk: dict[str, Any]) -> Any:
    if jwk.get("kty") != "RSA" or jwk.get("alg", "RS256") != "RS256":
        raise LaunchRefused("key_not_rs256", "the platform key is not an RS256 key")
    try:
        return jwt.PyJWK(jwk).key
    except (jwt.PyJWKError, ValueError):
        raise LaunchRefused("keyset_invalid", "the platform's key could not be read") from None


@lru_cache(maxsize=256)
def _key_in(keyset_json: bytes, kid: str) -> Any:
    # The key with ``kid`` in a keyset document as cached in Redis, or None if it has no such
    # key. Parsing the document and the JWK costs more than the RSA check, and the same
    # document serves launches for an hour: remember the result per process, keyed by the
    # document itself, so a rotated keyset in Redis is a new entry, never a stale one.
    jwk = _find(json.loads(keyset_json), kid)
    return None if jwk is None else _public_key(jwk)


class PlatformKeys:
    """Finds the public key that signed a platform's message."""

    def __init__(self, redis: Redis, http: requests.Session | None = None) -> None:
        self._redis = redis
        self._http = http or requests.Session()

    @staticmethod
    def _cache_key(url: str) -> str:
        return f"preceptor:lti:jwks:{hashlib.sha256(url.encode()).hexdigest()[:32]}"

    def _fetch(self, url: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, timeout=FETCH_TIMEOUT, stream=True)
            body = response.raw.read(MAX_KEYSET_BYTES + 1, decode_content=True)
            response.close()
        except requests.RequestException as exc:
            raise LaunchRefused(
                "keyset_unreachable",
                f"the platform's keyset could not be fetched ({type(exc).__name__})",
                status=401,
                advice="Tell your administrator the platform's keyset URL is unreachable.",
            ) from None
        if response.status_code != 200 or len(body) > MAX_KEYSET_BYTES:
            raise LaunchRefused(
                "keyset_invalid",
                f"the keyset URL answered {response.status_code}",
                advice="Tell your administrator the platform's keyset URL is wrong.",
            )
        try:
            keyset = json.loads(body)
            keys = keyset["keys"]
            assert isinstance(keys, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise LaunchRefused(
                "keyset_invalid",
                "the keyset URL did not return a JWKS",
                advice="Tell your administrator the platform's keyset URL is wrong.",
            ) from None
        document = json.dumps(keyset).encode()
        self._redis.set(self._cache_key(url), document, ex=KEYSET_TTL)
        _remember(self._cache_key(url), document)
        return cast(dict[str, Any], keyset)

    def prime(self, url: str, keyset: dict[str, Any]) -> None:
        """Put a keyset in the cache without fetching it (the development platform's own)."""
        self._redis.set(self._cache_key(url), json.dumps(keyset), ex=KEYSET_TTL)
        _recent.pop(self._cache_key(url), None)

    def key_for(self, key_set_url: str, kid: str) -> Any:
        """The public key with ``kid`` in the keyset at ``key_set_url``."""
        cache_key = self._cache_key(key_set_url)
        recent = _recalled(cache_key)
        if recent is not None:
            key = _key_in(recent, kid)
            if key is not None:
                return key
        cached = cast(bytes | None, self._redis.get(cache_key))
        if cached is not None:
            _remember(cache_key, cached)
            key = _key_in(cached, kid)
            if key is not None:
                return key
        jwk = None
        if cached is None:
            jwk = _find(self._fetch(key_set_url), kid)
        if jwk is None:
            guard = f"{self._cache_key(key_set_url)}:refetch"
            if self._redis.set(guard, 1, nx=True, ex=REFETCH_INTERVAL):
                jwk = _find(self._fetch(key_set_url), kid)
        if jwk is None:
            raise LaunchRefused(
                "kid_unknown",
                "the message was signed with a key the platform does not publish",
                advice="Launch again; if it keeps failing, "
                "tell your administrator (reason: kid_unknown).",
            )
        return _public_key(jwk)
