"""Secrets at rest: encrypted in the database, readable with any configured key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import Column, Integer, MetaData, Table, select, text

from plugin.crypto import DecryptionError, EncryptedText, Encryptor, get_encryptor
from plugin.db import get_db


def test_round_trip_and_rotation() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = Encryptor([old])
    token = before.encrypt("refresh-token-123")
    after = Encryptor([new, old])
    assert after.decrypt(token) == "refresh-token-123"
    rotated = after.rotate(token)
    assert Encryptor([new]).decrypt(rotated) == "refresh-token-123"
    with pytest.raises(DecryptionError, match="Put the old key back"):
        Encryptor([new]).decrypt(token)


def test_encrypted_column_never_stores_plaintext(app: Flask) -> None:
    table = Table(
        "secret_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("value", EncryptedText),
    )
    with get_db(app).session() as session:
        connection = session.connection()
        table.create(connection)
        connection.execute(table.insert().values(id=1, value="ya29.google-access-token"))
        raw = connection.execute(text("SELECT value FROM secret_probe")).scalar_one()
        assert "ya29" not in raw
        assert get_encryptor(app).decrypt(raw) == "ya29.google-access-token"
        assert connection.execute(select(table.c.value)).scalar_one() == "ya29.google-access-token"
        session.rollback()
