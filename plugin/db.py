"""SQLAlchemy 2.x engine and sessions: one session per request, one per job.

Usable without Flask: workers and the CLI build a :class:`Database` from settings and use
:meth:`Database.session_scope`. Inside Flask, :func:`request_session` gives the request's
session, closed when the request ends. Services receive a ``Session`` argument; they never
look one up themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from flask import Flask, current_app, g, has_request_context
from sqlalchemy import DateTime, Dialect, MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "Database",
    "UTCDateTime",
    "get_db",
    "request_session",
    "utcnow",
]

EXTENSION_KEY = "preceptor.db"

# Stable constraint names make Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC (the only zone the database stores)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware.

    SQLite has no timezone type and hands back naive values; PostgreSQL keeps the zone.
    Naive datetimes are refused on the way in: they are a bug, not a convention.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT and defers BEGIN; take it over
    # (the recipe from SQLAlchemy's SQLite dialect docs), and turn on foreign keys, WAL
    # (readers don't block the writer) and a busy timeout for web + worker on one file.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


def make_engine(url: str, *, pool_size: int = 5, connect_timeout: int = 5) -> Engine:
    """An engine for PostgreSQL (psycopg 3) or SQLite, with the settings each needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": connect_timeout}, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # Errors and logs must not carry row values (names, e-mails) into log files.
        hide_parameters=True,
        connect_args={"connect_timeout": connect_timeout, "application_name": "preceptor"},
    )


class Database:
    """The engine and session factory of one app or worker process."""

    def __init__(self, url: str, *, pool_size: int = 5, connect_timeout: int = 5) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, connect_timeout=connect_timeout)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect_name(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """A new session; the caller commits and closes it."""
        return self.sessionmaker()

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        """A session that commits if the block succeeds and rolls back if it raises."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def init_app(self, app: Flask) -> None:
        """Attach to ``app``: ``get_db()`` finds it, request sessions close at teardown."""
        app.extensions[EXTENSION_KEY] = self
        # Per request, not per app context: an app context can outlive one request (a
        # worker, a test, a streamed response), a request's session must not.
        app.teardown_request(_close_request_session)
        app.teardown_appcontext(_close_request_session)

    def dispose(self) -> None:
        self.engine.dispose()


def get_db(app: Flask | None = None) -> Database:
    """The Database of ``app`` (default: the current app)."""
    database: Database = (app or current_app).extensions[EXTENSION_KEY]
    return database


def request_session() -> Session:
    """The current request's session, created on first use and closed after the request."""
    if not has_request_context():
        raise RuntimeError(
            "request_session() is for web requests; jobs and commands use get_db().session_scope()"
        )
    session: Session | None = g.get("_preceptor_session")
    if session is None:
        session = get_db().session()
        g._preceptor_session = session
    return session


def _close_request_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("_preceptor_session", None)
    if session is not None:
        session.close()
