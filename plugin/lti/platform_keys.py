"""Platform public keys: fetched from the keyset URL, cached in Redis with a TTL.

A launch signed with a kid we do not know triggers one re-fetch (platforms rotate keys),
at most once per REFETCH_INTERVAL per keyset, so a stream of forged kids cannot make us
hammer a platform. Keys are shared by every web process through Redis.
"""

from __future__ import annotations

import hashlib
import json
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


@lru_cache(maxsize=256)
def _public_key(jwk_json: str) -> Any:
    # Parsing a JWK into a key object costs more than the RSA check; memoise per process.
    return jwt.PyJWK.from_json(jwk_json).key


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
        self._redis.set(self._cache_key(url), json.dumps(keyset), ex=KEYSET_TTL)
        return cast(dict[str, Any], keyset)

    def prime(self, url: str, keyset: dict[str, Any]) -> None:
        """Put a keyset in the cache without fetching it (the development platform's own)."""
        self._redis.set(self._cache_key(url), json.dumps(keyset), ex=KEYSET_TTL)

    def _cached(self, url: str) -> dict[str, Any] | None:
        raw = cast(bytes | None, self._redis.get(self._cache_key(url)))
        return cast(dict[str, Any], json.loads(raw)) if raw is not None else None

    @staticmethod
    def _find(keyset: dict[str, Any], kid: str) -> dict[str, Any] | None:
        for key in keyset.get("keys", []):
            if isinstance(key, dict) and key.get("kid") == kid:
                return key
        return None

    def key_for(self, key_set_url: str, kid: str) -> Any:
        """The public key with ``kid`` in the keyset at ``key_set_url``."""
        keyset = self._cached(key_set_url)
        if keyset is None:
            keyset = self._fetch(key_set_url)
        jwk = self._find(keyset, kid)
        if jwk is None:
            guard = f"{self._cache_key(key_set_url)}:refetch"
            if self._redis.set(guard, 1, nx=True, ex=REFETCH_INTERVAL):
                jwk = self._find(self._fetch(key_set_url), kid)
        if jwk is None:
            raise LaunchRefused(
                "kid_unknown",
                "the message was signed with a key the platform does not publish",
                advice="Launch again; if it keeps failing, "
                "tell your administrator (reason: kid_unknown).",
            )
        if jwk.get("kty") != "RSA" or jwk.get("alg", "RS256") != "RS256":
            raise LaunchRefused("key_not_rs256", "the platform key is not an RS256 key")
        try:
            return _public_key(json.dumps(jwk, sort_keys=True))
        except (jwt.PyJWKError, ValueError):
            raise LaunchRefused("keyset_invalid", "the platform's key could not be read") from None
