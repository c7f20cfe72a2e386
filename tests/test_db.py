"""The database layer: UTC timestamps, models, and migrations that match the models."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from plugin.db import Base, Database, begin_write
from plugin.migrate import current_heads, downgrade, script_heads, upgrade
from plugin.models import Course, CourseMembership, Deployment, Platform, User


def make_platform(session: Session, issuer: str = "https://canvas.example.edu") -> Platform:
    platform = Platform(
        issuer=issuer,
        client_id="10000000000001",
        auth_login_url=f"{issuer}/api/lti/authorize_redirect",
        auth_token_url=f"{issuer}/login/oauth2/token",
        key_set_url=f"{issuer}/api/lti/security/jwks",
    )
    session.add(platform)
    session.flush()
    return platform


def test_timestamps_come_back_aware_and_in_utc(session: Session) -> None:
    platform = make_platform(session)
    local = datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2)))
    platform.created_at = local
    session.commit()
    session.expire_all()
    stored = session.get(Platform, platform.id)
    assert stored is not None
    assert stored.created_at == local
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused(session: Session) -> None:
    platform = make_platform(session)
    platform.updated_at = datetime(2026, 1, 1, 12, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(StatementError, match="naive datetime"):
        session.flush()


def test_tenancy_chain_and_uniqueness(session: Session) -> None:
    platform = make_platform(session)
    deployment = Deployment(platform=platform, deployment_id="1:abc")
    course = Course(deployment=deployment, context_id="ctx-1", title="Clinical Skills I")
    user = User(platform=platform, sub="user-sub-1")
    session.add_all([course, user])
    session.flush()
    session.add(
        CourseMembership(
            course=course,
            user=user,
            roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        )
    )
    session.commit()
    membership = session.scalars(select(CourseMembership)).one()
    assert membership.roles[0].endswith("#Learner")
    assert membership.course.deployment.platform.issuer == "https://canvas.example.edu"

    session.add(User(platform=platform, sub="user-sub-1"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_deleting_a_platform_removes_its_tenants(session: Session) -> None:
    platform = make_platform(session)
    course = Course(deployment=Deployment(platform=platform, deployment_id="d"), context_id="c")
    session.add(course)
    session.commit()
    session.delete(platform)
    session.commit()
    assert session.scalars(select(Course)).all() == []


def test_migrations_match_the_models(database_url: str) -> None:
    """A model change without its migration fails here, on SQLite and on PostgreSQL."""
    database = Database(database_url)
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
        assert current_heads(connection) == script_heads()
    database.dispose()
    assert differences == []


def test_migrations_go_down_and_up_again(fresh_database_url: str) -> None:
    database = Database(fresh_database_url)
    upgrade(database.engine)
    downgrade(database.engine, "base")
    with database.engine.connect() as connection:
        assert current_heads(connection) == set()
    upgrade(database.engine)
    with database.engine.connect() as connection:
        assert current_heads(connection) == script_heads()
    database.dispose()


def test_the_peer_mentor_stage_migration_keeps_every_row_both_ways(
    fresh_database_url: str,
) -> None:
    """0018 gives existing programs the default stage, and going back deletes nothing (on
    SQLite, recreating the program table would cascade to every participant)."""
    from sqlalchemy import func, inspect

    from plugin.models import Participant, Program

    database = Database(fresh_database_url)
    upgrade(database.engine)
    with Session(database.engine) as session:
        platform = make_platform(session)
        course = Course(deployment=Deployment(platform=platform, deployment_id="d"), context_id="c")
        program = Program(course=course, title="Mentorship")
        user = User(platform_id=platform.id, sub="learner")
        session.add_all([program, user])
        session.flush()
        session.add(Participant(program_id=program.id, user_id=user.id, is_mentee=True))
        session.commit()
    downgrade(database.engine, "0017")
    with database.engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("program")}
        assert "peer_mentor_min_stage" not in columns
        assert connection.scalar(select(func.count()).select_from(Participant)) == 1
    upgrade(database.engine)
    with Session(database.engine) as session:
        assert session.scalars(select(Program.peer_mentor_min_stage)).one() == "clinical_student"
        assert session.scalar(select(func.count()).select_from(Participant)) == 1
    database.dispose()


def test_the_track_default_migration_keeps_every_program_s_capacities(
    fresh_database_url: str,
) -> None:
    """0019 gives existing programs no per-track default, so every track still falls back
    to the program's default capacity; going back deletes nothing."""
    from sqlalchemy import func, inspect

    from plugin.models import Participant, Profile, Program, Track
    from plugin.programs.relationships import track_capacity

    database = Database(fresh_database_url)
    upgrade(database.engine)
    with Session(database.engine) as session:
        platform = make_platform(session)
        course = Course(deployment=Deployment(platform=platform, deployment_id="d"), context_id="c")
        program = Program(
            course=course,
            title="Mentorship",
            tracks=["research", "career"],
            default_mentor_capacity=3,
        )
        user = User(platform_id=platform.id, sub="mentor")
        session.add_all([program, user])
        session.flush()
        session.add(
            Participant(
                program_id=program.id,
                user_id=user.id,
                is_mentor=True,
                profile=Profile(tracks_offered=["research", "career"]),
            )
        )
        session.commit()
    downgrade(database.engine, "0018")
    with database.engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("program")}
        assert "default_capacity_by_track" not in columns
        assert connection.scalar(select(func.count()).select_from(Participant)) == 1
    upgrade(database.engine)  # what an existing database goes through
    with Session(database.engine) as session:
        program = session.scalars(select(Program)).one()
        mentor = session.scalars(select(Participant)).one()
        assert program.default_capacity_by_track == {}
        assert [track_capacity(program, mentor, t) for t in program.offered_tracks] == [3, 3]
        assert program.default_capacity(Track.LEADERSHIP) == 3
    database.dispose()


def test_migrations_that_rebuild_a_table_keep_the_rows_that_point_at_it(
    fresh_database_url: str,
) -> None:
    """On SQLite, 0015 rebuilds ``relationship`` both ways (batch mode); with foreign keys
    on, dropping the old table deleted its meetings and events and unlinked its goals."""
    from sqlalchemy import func, text

    from plugin.models import (
        Goal,
        Meeting,
        MeetingFormat,
        MeetingKind,
        Participant,
        Program,
        Relationship,
        RelationshipEvent,
        RelationshipStatus,
        Track,
    )

    database = Database(fresh_database_url)
    upgrade(database.engine)
    with Session(database.engine) as session:
        platform = make_platform(session)
        course = Course(deployment=Deployment(platform=platform, deployment_id="d"), context_id="c")
        program = Program(course=course, title="Mentorship")
        users = [User(platform=platform, sub=sub) for sub in ("mentee", "mentor")]
        session.add_all([program, *users])
        session.flush()
        mentee, mentor = (
            Participant(program_id=program.id, user_id=u.id, is_mentee=i == 0, is_mentor=i == 1)
            for i, u in enumerate(users)
        )
        session.add_all([mentee, mentor])
        session.flush()
        relationship = Relationship(
            program_id=program.id,
            mentee_id=mentee.id,
            mentor_id=mentor.id,
            track=Track.RESEARCH,
            status=RelationshipStatus.ACTIVE,
        )
        session.add(relationship)
        session.flush()
        now = datetime.now(UTC)
        session.add_all(
            [
                RelationshipEvent(relationship_id=relationship.id, kind="activated"),
                Meeting(
                    program_id=program.id,
                    kind=MeetingKind.RELATIONSHIP,
                    relationship_id=relationship.id,
                    title="First meeting",
                    starts_at=now,
                    ends_at=now + timedelta(hours=1),
                    time_zone="UTC",
                    format=MeetingFormat.VIRTUAL,
                ),
                Goal(
                    program_id=program.id,
                    owner_id=mentee.id,
                    relationship_id=relationship.id,
                    title="Publish",
                ),
            ]
        )
        session.commit()

    def counts() -> tuple[int, int, int]:
        with database.engine.connect() as connection:
            return (
                connection.scalar(text("SELECT count(*) FROM meeting")) or 0,
                connection.scalar(text("SELECT count(*) FROM relationship_event")) or 0,
                connection.scalar(
                    text("SELECT count(*) FROM goal WHERE relationship_id IS NOT NULL")
                )
                or 0,
            )

    assert counts() == (1, 1, 1)
    downgrade(database.engine, "0014")
    assert counts() == (1, 1, 1)
    upgrade(database.engine)
    assert counts() == (1, 1, 1)
    with Session(database.engine) as session:
        assert session.scalar(select(func.count()).select_from(Relationship)) == 1
    database.dispose()


def test_utc_now_is_aware() -> None:
    from plugin.db import utcnow

    assert utcnow().tzinfo is UTC


def test_a_writer_that_read_first_waits_for_another_process_instead_of_failing(
    fresh_database_url: str,
) -> None:
    # Two web workers on the SQLite default: one reads, the other commits a write, then the
    # first writes. A deferred transaction fails there at once ("database is locked").
    database = Database(fresh_database_url)
    upgrade(database.engine)
    try:
        with database.session() as first, database.session() as second:
            first.scalar(select(Platform.id).limit(1))  # a launch's validation reads
            make_platform(second, "https://moodle.example.edu")
            second.commit()
            begin_write(first)
            make_platform(first, "https://canvas.example.edu")
            first.commit()
            assert len(first.scalars(select(Platform)).all()) == 2
    finally:
        database.dispose()


def test_begin_write_takes_the_write_lock_on_sqlite(fresh_database_url: str) -> None:
    database = Database(fresh_database_url)
    if database.dialect_name != "sqlite":
        pytest.skip("BEGIN IMMEDIATE is SQLite's; PostgreSQL needs nothing")
    upgrade(database.engine)
    try:
        with database.session() as writer:
            begin_write(writer)
            other = database.engine.raw_connection()
            try:
                cursor = other.cursor()
                cursor.execute("PRAGMA busy_timeout=0")
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    cursor.execute("BEGIN IMMEDIATE")
            finally:
                other.close()
    finally:
        database.dispose()


def test_postgres_connections_are_pinged_only_after_sitting_idle(
    database_url: str, is_postgres: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not is_postgres:
        pytest.skip("connection pinging is for PostgreSQL's pool")
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from plugin import db as db_module

    database = Database(database_url, pool_size=1)
    admin = Database(database_url, pool_size=1)
    try:

        def backend() -> int:
            with database.engine.connect() as connection:
                return int(connection.scalar(text("SELECT pg_backend_pid()")) or 0)

        def kill(pid: int) -> None:
            with admin.engine.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        first = backend()
        kill(first)
        # Used moments ago: taken as is, so the request that uses it fails (the bound) ...
        with pytest.raises(DBAPIError):
            backend()
        # ... and the pool, having seen the disconnect, starts over with a live connection.
        second = backend()
        assert second != first
        kill(second)
        # Idle longer than PING_IDLE_AFTER: pinged at checkout, found dead, replaced.
        monkeypatch.setattr(db_module, "PING_IDLE_AFTER", 0.0)
        third = backend()
        assert third not in (first, second)
    finally:
        database.dispose()
        admin.dispose()


def test_one_row_read_runs_alone_in_autocommit_on_postgres(fresh_database_url: str) -> None:
    from sqlalchemy import func

    from plugin.db import OneRowRead

    database = Database(fresh_database_url, pool_size=1)
    try:
        if database.dialect_name != "postgresql":
            pytest.skip("SQLite: see test_one_row_read_runs_alone_without_begin_on_sqlite")
        # In a transaction opened by BEGIN, now() (its start) is before the statement's own
        # start; a statement run alone in autocommit is its own transaction.
        alone = select((func.now() == func.statement_timestamp()).label("alone"))
        read = OneRowRead(lambda: alone)
        with database.session() as session:
            assert read.run(session, {}) == {"alone": True}
            assert not session.in_transaction()
            assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            # The pooled connection went back to its usual level: transactions again.
            session.execute(select(1))
            assert session.execute(alone).scalar() is False
            # With a transaction open, the read runs inside it.
            assert read.run(session, {}) == {"alone": False}
    finally:
        database.dispose()


def test_one_row_read_runs_alone_without_begin_on_sqlite(fresh_database_url: str) -> None:
    from sqlalchemy import literal_column

    from plugin.db import OneRowRead

    database = Database(fresh_database_url, pool_size=1)
    try:
        if database.dialect_name != "sqlite":
            pytest.skip("PostgreSQL: see test_one_row_read_runs_alone_in_autocommit_on_postgres")
        sent: list[str] = []
        with database.engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.set_trace_callback(sent.append)
        read = OneRowRead(lambda: select(literal_column("1").label("one")))
        with database.session() as session:
            assert read.run(session, {}) == {"one": 1}
            assert sent == ["SELECT 1 AS one"]  # no BEGIN, no COMMIT around it
            assert not session.in_transaction()
            assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            # The connection went back as it came: the next transaction begins as usual.
            session.execute(select(literal_column("2")))
            assert sent[1:] == ["BEGIN", "SELECT 2"]
            # With a transaction open, the read runs inside it.
            assert read.run(session, {}) == {"one": 1}
            assert sent[3:] == ["SELECT 1 AS one"]
            session.commit()
            assert sent[4:] == ["COMMIT"]
    finally:
        database.dispose()


def test_one_row_read_gives_what_sqlalchemys_rows_give(fresh_database_url: str) -> None:
    # JSON, enum, boolean, timestamps, NULLs and a literal inside the statement: the lean
    # path outside a transaction and SQLAlchemy's result rows inside one must agree.
    from sqlalchemy import bindparam

    from plugin.db import OneRowRead
    from plugin.models import MembershipSource

    database = Database(fresh_database_url, pool_size=1)
    try:
        upgrade(database.engine)
        with database.session() as session:
            platform = make_platform(session)
            deployment = Deployment(platform=platform, deployment_id="1:abc")
            course = Course(deployment=deployment, context_id="ctx-1", title=None)
            user = User(platform=platform, sub="sub-1", name="Ana", email=None)
            session.add_all([course, user])
            session.flush()
            session.add(
                CourseMembership(
                    course=course,
                    user=user,
                    roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
                    active=False,
                    source=MembershipSource.ROSTER,
                )
            )
            session.commit()

        def statement() -> Any:
            return (
                select(
                    User.id,
                    User.name,
                    User.email,
                    Course.title,
                    Course.created_at,
                    CourseMembership.roles,
                    CourseMembership.active,
                    CourseMembership.source,
                )
                .join(CourseMembership, CourseMembership.user_id == User.id)
                .join(Course, Course.id == CourseMembership.course_id)
                .where(User.sub == bindparam("sub"), Course.context_id != "")
            )

        read = OneRowRead(statement)
        with database.session() as session:
            lean = read.run(session, {"sub": "sub-1"})
            assert not session.in_transaction()  # it did take the lean path
            usual = dict(session.execute(statement(), {"sub": "sub-1"}).one()._mapping)
            assert read.run(session, {"sub": "nobody"}) is None
        assert lean == usual
        assert lean is not None
        assert lean["source"] is MembershipSource.ROSTER
        assert lean["active"] is False
        assert lean["created_at"].tzinfo is not None
    finally:
        database.dispose()
