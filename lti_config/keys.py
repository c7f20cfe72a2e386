"""The tool's RSA signing keys: generation, JWK form, and the development key pair.

Private keys never enter git: the development pair is written under the instance folder
(gitignored), PEM-encrypted with a passphrase derived from PRECEPTOR_ENCRYPTION_KEY and
readable by its owner only. The kid is the RFC 7638 JWK thumbprint, so the same key always
has the same id, on any machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "ToolKey",
    "ensure_dev_keypair",
    "generate_private_key",
    "load_private_key",
    "public_jwk",
    "thumbprint",
]

#: RSA modulus size for tool keys; 2048 is what Canvas and Moodle use for theirs.
KEY_SIZE = 2048
DEV_KEY_FILENAME = "tool-dev-key.pem"


@dataclass(frozen=True)
class ToolKey:
    """A private key file and the public half's id."""

    path: Path
    kid: str


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generate_private_key() -> rsa.RSAPrivateKey:
    """A fresh RSA signing key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 SHA-256 thumbprint of the key's JWK (its canonical id)."""
    numbers = public_key.public_numbers()
    canonical = json.dumps(
        {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    )


def public_jwk(public_key: rsa.RSAPublicKey) -> dict[str, Any]:
    """The public key as a JWK for a JWKS document (``{"keys": [jwk, ...]}``)."""
    numbers = public_key.public_numbers()
    return {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": thumbprint(public_key),
        "n": _b64url_uint(numbers.n),
        "e": _b64url_uint(numbers.e),
    }


def _passphrase(secret: str) -> bytes:
    # A dedicated derivation, so the PEM passphrase is never the encryption key itself.
    return hashlib.sha256(b"preceptor-tool-key:" + secret.encode()).hexdigest().encode()


def load_private_key(path: Path, secret: str) -> rsa.RSAPrivateKey:
    """Read a PEM private key encrypted by :func:`ensure_dev_keypair`."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=_passphrase(secret))
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA key")
    return key


def ensure_dev_keypair(
    directory: Path, secret: str, filename: str = DEV_KEY_FILENAME
) -> tuple[ToolKey, bool]:
    """The development key pair in ``directory``, generated if absent. Returns (key, created)."""
    path = directory / filename
    if path.exists():
        key = load_private_key(path, secret)
        return ToolKey(path=path, kid=thumbprint(key.public_key())), False
    directory.mkdir(parents=True, exist_ok=True)
    key = generate_private_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_passphrase(secret)),
    )
    # Create with owner-only permissions from the start; never world-readable, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return ToolKey(path=path, kid=thumbprint(key.public_key())), True
