"""plugin.lti.jws refuses exactly the token segments PyJWT refuses, and decodes the rest alike."""

from __future__ import annotations

import itertools

import jwt
import pytest
from jwt.exceptions import DecodeError

from plugin.devplatform.signer import DevPlatform
from plugin.lti.jws import SegmentCheckedJWT, decode_segment

PYJWT_CHECK = jwt.PyJWS._decode_base64url_segment


def _verdict(check: object, segment: bytes) -> bytes | str:
    assert callable(check)
    try:
        return bytes(check(segment, "payload"))
    except DecodeError as exc:
        return f"refused: {exc}"


def _segments() -> list[bytes]:
    encoded = [jwt.utils.base64url_encode(bytes(range(n))) for n in range(7)]
    alphabet = b"Aa0-_=+/.! \n\x00\xff"
    short = [bytes(p) for n in range(4) for p in itertools.product(alphabet, repeat=n)]
    return [
        *encoded,
        *[e + b"=" * k for e in encoded for k in range(4)],
        *[e + junk for e in encoded for junk in (b"!", b"\n", b" ", b"+", b"/", b"\xc3\xa9")],
        *[junk + e for e in encoded for junk in (b"=", b".", b"\t")],
        b"QQ",  # canonical
        b"QR",  # spare bits set: another text for the same byte
        b"QUI",
        b"QUJ",
        b"====",
        *short,
    ]


def test_segment_check_overrides_a_method_pyjwt_still_has() -> None:
    # If PyJWT renames its check, ours stops being used (PyJWT's own runs): make it loud.
    assert "_decode_base64url_segment" in vars(jwt.PyJWS)
    assert jwt.PyJWS._decode_base64url_segment is not decode_segment


def test_every_segment_gets_pyjwts_verdict() -> None:
    segments = _segments()
    differ = [s for s in segments if _verdict(decode_segment, s) != _verdict(PYJWT_CHECK, s)]
    assert differ == []
    # The corpus exercises both verdicts.
    verdicts = {isinstance(_verdict(PYJWT_CHECK, s), str) for s in segments}
    assert verdicts == {True, False}


def test_a_token_decodes_as_with_pyjwt_and_junk_in_it_is_refused() -> None:
    platform = DevPlatform(issuer="https://lms.example.edu")
    key = jwt.PyJWK(platform.jwks()["keys"][0]).key
    token = platform.sign({"sub": "user-1", "nonce": "n-1"})
    ours = SegmentCheckedJWT()
    assert ours.decode(token, key, algorithms=["RS256"]) == jwt.decode(
        token, key, algorithms=["RS256"]
    )
    header, payload, signature = token.split(".")
    for forged in (f"{header}.{payload}!.{signature}", f"{header}.{payload}.{signature}!!"):
        with pytest.raises(jwt.DecodeError):
            jwt.decode(forged, key, algorithms=["RS256"])
        with pytest.raises(jwt.DecodeError):
            ours.decode(forged, key, algorithms=["RS256"])


def test_parse_before_decode_reads_the_token_once_and_decode_still_verifies_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A launch parses the unverified token to find its key, then decodes it: the second
    step reuses the split and the JSON, but never the verdict: the signature is checked."""
    import json

    platform = DevPlatform(issuer="https://lms.example.edu")
    other = DevPlatform(issuer="https://other.example.edu")
    key = jwt.PyJWK(platform.jwks()["keys"][0]).key
    wrong_key = jwt.PyJWK(other.jwks()["keys"][0]).key
    token = platform.sign({"sub": "user-1", "nonce": "n-1"})
    ours = SegmentCheckedJWT()

    loads: list[object] = []
    real_loads = json.loads

    def counting_loads(text: str | bytes, **kw: object) -> object:
        loads.append(text)
        return real_loads(text, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(json, "loads", counting_loads)
    header, claims = ours.parse(token)
    assert header["alg"] == "RS256"
    assert claims == {"sub": "user-1", "nonce": "n-1"}
    parsed = len(loads)
    decoded = ours.decode(token, key, algorithms=["RS256"])
    assert decoded == claims
    assert len(loads) == parsed  # header and claims were not parsed again
    decoded["sub"] = "changed"  # a copy: the next decode is not affected
    assert ours.decode(token, key, algorithms=["RS256"])["sub"] == "user-1"

    ours.parse(token)
    with pytest.raises(jwt.InvalidSignatureError):
        ours.decode(token, wrong_key, algorithms=["RS256"])
    # Another token after a parse is read afresh.
    second = platform.sign({"sub": "user-2"})
    ours.parse(token)
    assert ours.decode(second, key, algorithms=["RS256"])["sub"] == "user-2"


@pytest.mark.parametrize("claims", [b"[1, 2]", b"42", b"not json"])
def test_parse_refuses_claims_that_are_not_a_json_object(claims: bytes) -> None:
    header = jwt.utils.base64url_encode(b'{"alg": "RS256", "kid": "k"}').decode()
    body = jwt.utils.base64url_encode(claims).decode()
    with pytest.raises(DecodeError):
        SegmentCheckedJWT().parse(f"{header}.{body}.c2ln")
