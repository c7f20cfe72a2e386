"""Alembic, configured in code: ``preceptor db upgrade`` and the readiness check use it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

__all__ = [
    "alembic_config",
    "current_heads",
    "downgrade",
    "is_at_head",
    "script_heads",
    "upgrade",
]

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
    with _migrating(engine) as config:
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Undo migrations down to ``revision`` (development and tests; production goes forward)."""
    with _migrating(engine) as config:
        command.downgrade(config, revision)


@contextmanager
def _migrating(engine: Engine) -> Iterator[Config]:
    """One transaction for the migrations, on SQLite with foreign keys off meanwhile.

    SQLite cannot alter most of a table, so Alembic's batch mode copies it to a new table
    and drops the old one; with foreign keys on, that DROP deletes every row referencing
    it through ON DELETE CASCADE (and nulls SET NULL ones): moving ``relationship`` to a
    new shape took its meetings and history with it. The switch only works outside a
    transaction, so it is sent to the driver before the migrations' BEGIN, and the result
    is checked with ``PRAGMA foreign_key_check`` before the commit (the recipe in
    Alembic's batch documentation).
    """
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                yield config
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(
                            f"migrations left {len(broken)} rows pointing at nothing "
                            f"(first: {tuple(broken[0])}); nothing was applied"
                        )
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


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
