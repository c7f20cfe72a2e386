"""The tool's signing keys."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from lti_config.keys import ensure_dev_keypair, load_private_key, public_jwk, thumbprint


def _uint(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def test_thumbprint_matches_rfc_7638_example() -> None:
    # RFC 7638 section 3.1: this key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
        "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
        "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    public = rsa.RSAPublicNumbers(e=_uint("AQAB"), n=_uint(n)).public_key()
    assert thumbprint(public) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_dev_key_pair_is_created_once_private_and_encrypted(tmp_path: Path) -> None:
    key, created = ensure_dev_keypair(tmp_path / "keys", "passphrase-source")
    again, created_again = ensure_dev_keypair(tmp_path / "keys", "passphrase-source")
    assert created
    assert not created_again
    assert again.kid == key.kid
    assert key.path.stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in key.path.read_bytes()
    # A wrong passphrase usually fails the padding check ("Bad decrypt"); about 1 time in
    # 256 the padding happens to look right and the garbage fails as ASN.1 instead.
    with pytest.raises(ValueError, match=r"Bad decrypt|password|ASN\.1|deserialize"):
        load_private_key(key.path, "another secret")


def test_public_jwk_is_a_plain_rs256_signing_key(tmp_path: Path) -> None:
    key, _ = ensure_dev_keypair(tmp_path, "s")
    jwk = public_jwk(load_private_key(key.path, "s").public_key())
    assert jwk["kid"] == key.kid
    assert (jwk["kty"], jwk["alg"], jwk["use"], jwk["e"]) == ("RSA", "RS256", "sig", "AQAB")
    assert "d" not in jwk  # never the private exponent
