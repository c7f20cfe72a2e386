"""PyJWT, with its base64url segment check made by one regular expression instead of a loop.

PyJWT 2.14 started refusing token segments with characters outside the base64url alphabet
(GHSA-hxm8-2xgr-2p9m; do not pin below it) with a Python generator over every byte: on a
4 KB id_token that is ~200 of the ~240 us a decode costs, ten times the RSA check.
:class:`SegmentCheckedJWT` makes the same decision, refusing the same segments with the same
error, with a compiled regular expression; everything else (header checks, algorithms,
signature, claims) is PyJWT's own code. Should PyJWT rename the method, PyJWT's own check
runs again: slower, never weaker. tests/lti/test_jws.py holds both to the same verdicts.
"""

from __future__ import annotations

import re
from typing import Final

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


class SegmentCheckedJWS(jwt.PyJWS):
    """PyJWS with :func:`decode_segment` in place of its per-byte loop."""

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        return decode_segment(segment, name)


class SegmentCheckedJWT(jwt.PyJWT):
    """PyJWT whose JWS layer is :class:`SegmentCheckedJWS`."""

    def __init__(self) -> None:
        super().__init__()
        self._jws = SegmentCheckedJWS(options=self._get_sig_options())
