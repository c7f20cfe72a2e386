"""SQLAlchemy 2.x engine and sessions: one session per request, one per job.

Usable without Flask: workers and the CLI build a :class:`Database` from settings and use
:meth:`Database.session_scope`. Inside Flask, :func:`request_session` gives the request's
session, closed when the request ends. Services receive a ``Session`` argument; they never
look one up themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from flask import Flask, current_app, g, has_request_context
from sqlalchemy import DateTime, Dialect, Enum, MetaData, Select, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "Database",
    "OneRowRead",
    "UTCDateTime",
    "begin_write",
    "enum_column",
    "get_db",
    "request_session",
    "utcnow",
]

EXTENSION_KEY = "preceptor.db"
#: Execution option: on SQLite, begin the transaction with BEGIN IMMEDIATE (see begin_write).
WRITE_INTENT = "preceptor_write_intent"
#: A pooled PostgreSQL connection idle longer than this is pinged before use (see
#: _ping_when_idle); one in steady use is not.
PING_IDLE_AFTER = 5.0
_LAST_USED = "preceptor_last_used"

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


def enum_column(enum: type[StrEnum], length: int = 20) -> Enum:
    """A column type for a StrEnum stored as its values in a VARCHAR (no native enum type).

    VARCHAR keeps SQLite and PostgreSQL migrations identical and lets a new member be added
    without an ALTER TYPE.
    """
    return Enum(
        enum, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


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
        immediate = connection.get_execution_options().get(WRITE_INTENT, False)
        # Straight to the driver: a statement through SQLAlchemy's execution machinery
        # cost more than the BEGIN itself, on every request.
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, *, pool_size: int = 5, connect_timeout: int = 5) -> Engine:
    """An engine for PostgreSQL (psycopg 3) or SQLite, with the settings each needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": connect_timeout}, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # Errors and logs must not carry row values (names, e-mails) into log files.
        hide_parameters=True,
        connect_args={"connect_timeout": connect_timeout, "application_name": "preceptor"},
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that sat idle, and only for those.

    ``pool_pre_ping`` pings on every checkout: one more round trip per request (a launch
    made four with it, three without). Connections die while they sit idle (a database
    restart, a failover, a firewall's idle timeout), so a connection checked in less than
    PING_IDLE_AFTER seconds ago is used as is, and an older one is pinged and, if dead,
    replaced (SQLAlchemy's recipe: DisconnectionError from a checkout handler). A
    connection that dies in the seconds after its last use fails the one request that uses
    it; SQLAlchemy then sees the disconnect and invalidates the whole pool.
    """

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _used(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) < PING_IDLE_AFTER:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:  # any failure means: use another connection
            name = type(exc).__name__
            raise DisconnectionError(f"idle connection failed its ping ({name})") from exc


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


def begin_write(session: Session) -> None:
    """Start the session's next transaction as one that will write (SQLite: BEGIN IMMEDIATE).

    On SQLite in WAL mode a deferred transaction that has read and then writes after another
    process committed fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT; the
    busy timeout does not apply), so two web workers upserting rows at the same time made
    500s. Taking the write lock at BEGIN makes the second writer wait its turn instead. Any
    open transaction is committed first. PostgreSQL needs nothing: this is a no-op there.
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={WRITE_INTENT: True})


class _Compiled:
    """A select compiled for one dialect, with what running it on a DB-API cursor needs."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.compiled = compiled
        self.sql = compiled.string
        #: Parameter names in order, for positional paramstyles (SQLite's qmark).
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup) if compiled.positiontup is not None else None
        )
        self.keys = tuple(str(column.key) for column in statement.selected_columns)
        # Each column type's own conversion of what the driver returns (JSON text, enum
        # names, SQLite's 0/1), exactly as SQLAlchemy's result rows apply it.
        self.processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
        #: Whether every parameter goes to the driver as given (ints and strings do);
        #: otherwise the statement runs through SQLAlchemy's execution as usual.
        self.plain_parameters = all(
            bind.type.dialect_impl(dialect).bind_processor(dialect) is None
            for bind in compiled.binds.values()
        )

    def arguments(self, params: dict[str, Any]) -> Any:
        values = self.compiled.construct_params(params)  # adds the statement's own literals
        return values if self.order is None else tuple(values[name] for name in self.order)

    def row(self, found: Any) -> dict[str, Any]:
        return {
            key: value if process is None else process(value)
            for key, process, value in zip(self.keys, self.processors, found, strict=True)
        }


class OneRowRead:
    """A select of columns that a hot path runs on every request, run as cheaply as it can be.

    The returning person's launch reads one row (``plugin.lti.provisioning``). Measured in
    a gunicorn worker under load, SQLAlchemy's layers around that one read (session
    transaction, connection, execution context, result) took ~23 % of the launch's time and
    the SQLite statement itself 6 %. So, outside a transaction, this runs the statement on
    the DB-API: SQLAlchemy still compiles it (once per dialect), fills in its literal
    parameters and converts each column with the column type's own result processor; a
    pooled connection is taken, the statement runs alone (SQLite's autocommit mode, which
    our connections use; psycopg's autocommit, so no BEGIN and no COMMIT round trips) and
    the connection goes straight back to the pool. One statement sees one consistent
    snapshot; a caller that decides to write from it reads again in its write transaction.

    Inside an open transaction, on a session bound to a connection (tests), or for a
    statement whose parameters need conversion, it runs through the session as usual.
    """

    def __init__(self, build: Callable[[], Select[Any]]) -> None:
        self._build = build
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self._build(), dialect)
        return compiled

    def run(self, session: Session, params: dict[str, Any]) -> dict[str, Any] | None:
        """The one row found (column key -> value), or None."""
        bind = session.get_bind()
        if not session.in_transaction() and isinstance(bind, Engine):
            compiled = self._for(bind.dialect)
            if compiled.plain_parameters:
                return self._alone(bind, compiled, params)
        found = session.connection().execute(self._build(), params).one_or_none()
        return None if found is None else dict(found._mapping)

    @staticmethod
    def _alone(
        engine: Engine, compiled: _Compiled, params: dict[str, Any]
    ) -> dict[str, Any] | None:
        pooled = engine.raw_connection()
        try:
            driver = pooled.driver_connection
            autocommit = engine.dialect.name == "postgresql"
            if autocommit:
                driver.autocommit = True  # type: ignore[union-attr]  # psycopg, idle here
            try:
                cursor = pooled.cursor()
                try:
                    cursor.execute(compiled.sql, compiled.arguments(params))
                    found = cursor.fetchone()
                finally:
                    cursor.close()
            finally:
                if autocommit:
                    driver.autocommit = False  # type: ignore[union-attr]
        finally:
            pooled.close()  # back to the pool
        return None if found is None else compiled.row(found)


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
