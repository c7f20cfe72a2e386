"""Alembic, configured in code: ``preceptor db upgrade`` and the readiness check use it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

__all__ = ["alembic_config", "current_heads", "is_at_head", "script_heads", "upgrade"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # '%' is Alembic's interpolation character; a password may contain it.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on ``engine``'s database."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def script_heads() -> set[str]:
    """The head revisions our code ships."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return set(script.get_heads())


def current_heads(connection: Connection) -> set[str]:
    """The revisions the database is at (empty before the first migration)."""
    return set(MigrationContext.configure(connection).get_current_heads())


def is_at_head(connection: Connection, expected: set[str] | None = None) -> bool:
    """Whether the database has every migration this code expects."""
    return current_heads(connection) == (expected if expected is not None else script_heads())
