"""PyJWT, with its base64url segment check made by one regular expression instead of a loop.

PyJWT 2.14 started refusing token segments with characters outside the base64url alphabet
(GHSA-hxm8-2xgr-2p9m; do not pin below it) with a Python generator over every byte: on a
4 KB id_token that is ~200 of the ~240 us a decode costs, ten times the RSA check.
:class:`SegmentCheckedJWT` makes the same decision, refusing the same segments with the same
error, with a compiled regular expression; everything else (header checks, algorithms,
signature, claims) is PyJWT's own code. Should PyJWT rename the method, PyJWT's own check
runs again: slower, never weaker. tests/lti/test_jws.py holds both to the same verdicts.

A launch reads the token's header and claims unverified (to find its registration and
key) and then verifies it: :meth:`SegmentCheckedJWT.parse` splits and parses it once per
thread and the decode that follows reuses that (``_load`` and PyJWT's documented
``_decode_payload`` hook), so a 4 KB id_token is base64- and JSON-decoded once, not twice.
The signature and every claim check still run on each decode.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Final

import jwt
from jwt.exceptions import DecodeError
from jwt.utils import base64url_decode, base64url_encode

__all__ = ["SegmentCheckedJWS", "SegmentCheckedJWT", "decode_segment"]

_BASE64URL: Final = re.compile(rb"[A-Za-z0-9_-]*")


def decode_segment(segment: bytes, name: str) -> bytes:
    """One JWS segment, decoded; DecodeError unless it is canonical base64url.

    Up to two trailing '=' are accepted (some issuers pad) when the length is then a
    multiple of four; anything outside the alphabet, a length no encoding produces, or
    spare bits that would let two texts decode alike are refused.
    """
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if (
        padding > 2
        or (padding and len(segment) % 4)
        or len(stripped) % 4 == 1
        or _BASE64URL.fullmatch(stripped) is None
    ):
        raise DecodeError(f"Invalid {name} padding")
    decoded = base64url_decode(stripped)
    if base64url_encode(decoded) != stripped:
        raise DecodeError(f"Invalid {name} padding")
    return decoded


class _LastToken(threading.local):
    """The last token this thread parsed, and what parsing it gave."""

    token: bytes | None = None
    loaded: tuple[bytes, bytes, dict[str, Any], bytes] | None = None
    claims: dict[str, Any] | None = None


class SegmentCheckedJWS(jwt.PyJWS):
    """PyJWS with :func:`decode_segment` in place of its per-byte loop, remembering the
    last token it split (per thread): a launch reads the unverified header and claims to
    find its registration and key, then verifies the same token."""

    _last = _LastToken()

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        return decode_segment(segment, name)

    def _load(self, jwt: str | bytes) -> tuple[bytes, bytes, dict[str, Any], bytes]:
        raw = jwt.encode("utf-8") if isinstance(jwt, str) else jwt
        last = self._last
        if last.loaded is not None and raw == last.token:
            return last.loaded
        loaded = super()._load(jwt)
        last.token, last.loaded, last.claims = raw, loaded, None
        return loaded


class SegmentCheckedJWT(jwt.PyJWT):
    """PyJWT whose JWS layer is :class:`SegmentCheckedJWS`, with :meth:`parse` for the
    unverified read that comes before a decode of the same token."""

    def __init__(self) -> None:
        super().__init__()
        self._jws = SegmentCheckedJWS(options=self._get_sig_options())

    def parse(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Header and claims of a compact JWS, NOT verified; DecodeError unless both are
        JSON objects. A ``decode`` of the same token on this thread then splits and parses
        it no more (the base64 and JSON of a 4 KB id_token are done once, not twice)."""
        payload, _, header, _ = self._jws._load(token)
        try:
            claims = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise DecodeError(f"Invalid payload string: {exc}") from exc
        if not isinstance(claims, dict):
            raise DecodeError("Invalid payload string: must be a json object")
        SegmentCheckedJWS._last.claims = claims
        return header, claims

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        # PyJWT's documented hook. Only the very payload bytes parse() read are reused (a
        # detached payload, or another token, is parsed as PyJWT does), as a copy.
        last = SegmentCheckedJWS._last
        loaded, claims = last.loaded, last.claims
        if claims is not None and loaded is not None and decoded["payload"] is loaded[0]:
            return dict(claims)
        return super()._decode_payload(decoded)
