"""Encryption at rest for secrets: OAuth tokens, private keys, calendar credentials.

Fernet (AES-128-CBC + HMAC-SHA256, from the cryptography package) with MultiFernet for
rotation: PRECEPTOR_ENCRYPTION_KEY holds comma-separated keys; the first encrypts, all
decrypt, and :meth:`Encryptor.rotate` re-encrypts old values under the first key.

Models use :class:`EncryptedText` columns; the value is encrypted when written and
decrypted when read, with the keys of the current app (web request, job or command).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app
from sqlalchemy import Dialect, Text
from sqlalchemy.types import TypeDecorator

__all__ = ["DecryptionError", "EncryptedText", "Encryptor", "get_encryptor"]

EXTENSION_KEY = "preceptor.encryptor"


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


class Encryptor:
    """Encrypts and decrypts text with the configured Fernet keys."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is needed")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise DecryptionError(
                "a stored secret cannot be decrypted with PRECEPTOR_ENCRYPTION_KEY: was a key "
                "removed before old values were rotated? Put the old key back after the new one"
            ) from None

    def rotate(self, token: str) -> str:
        """The same secret, re-encrypted under the first (newest) key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise DecryptionError("cannot rotate a value no configured key decrypts") from None

    def init_app(self, app: Flask) -> None:
        app.extensions[EXTENSION_KEY] = self


def get_encryptor(app: Flask | None = None) -> Encryptor:
    """The Encryptor of ``app`` (default: the current app)."""
    encryptor: Encryptor = (app or current_app).extensions[EXTENSION_KEY]
    return encryptor


class EncryptedText(TypeDecorator[str]):
    """A text column stored encrypted; code reads and writes plain ``str``."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else get_encryptor().encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else get_encryptor().decrypt(value)
