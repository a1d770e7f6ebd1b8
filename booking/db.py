"""Declarative base, naming convention, the UTC datetime type and SQLite's locking set-up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, bindparam, case, event
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session
from sqlalchemy.types import TypeDecorator

from booking import clock

# Stable constraint names, so Alembic migrations name the same thing on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """The clock's now (`booking.clock`): column defaults and services read the same instant."""
    return clock.now()


def watermark_values(table: Any, now: datetime | None = None) -> dict[str, Any]:
    """SET clause that moves a watermark (`version`, `changed_at`): the version up by one, the time
    to `now` unless it is later already (a clock that stepped back, or another host's), so neither
    ever goes back. Without `now` it is the bound parameter "now", for prebuilt statements."""
    at = bindparam("now", now, type_=UTCDateTime)
    return {"version": table.c.version + 1, "changed_at": case((table.c.changed_at < at, at), else_=table.c.changed_at)}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database.

    SQLite has no time zones: `DateTime(timezone=True)` silently drops the offset and
    reads back a naive value. We refuse naive input, store UTC (naive on SQLite,
    timestamptz on PostgreSQL, so range types still work) and always read back aware UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: give it a time zone")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, a busy timeout and explicit BEGIN modes for SQLite.

    pysqlite's own transaction handling sends no BEGIN before a SELECT, so a
    check-then-insert is not atomic and double-books under load. We switch it off and
    send BEGIN ourselves: DEFERRED for reads, IMMEDIATE for writes (see
    `write_transaction`), so a writer takes the lock before it reads what it checks.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def keep_loaded_and_end_reads(session: Session) -> None:
    """Commit a transaction that only read, without expiring what it loaded.

    Expiring would make the next attribute access read the row again; what a writer decides
    on is read afresh under its lock anyway (populate_existing, Core statements).
    """
    session.expire_on_commit, expire = False, session.expire_on_commit
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


@contextmanager
def write_transaction(session: Session | scoped_session[Session]) -> Iterator[Session | scoped_session[Session]]:
    """One write transaction that holds the database's write lock from its first statement.

    On SQLite this is BEGIN IMMEDIATE; on PostgreSQL the caller also locks the rows it
    checks (SELECT … FOR UPDATE). A read transaction already open (loading the current
    user, say) is ended first: upgrading it to a writer later is what gives SQLite's
    "database is locked". What it loaded is kept, not read again inside the lock.
    """
    real = session() if isinstance(session, scoped_session) else session
    begun = False
    if real.in_transaction():
        if real.new or real.dirty or real.deleted:
            real.commit()
        elif real.get_bind().dialect.name == "sqlite":
            # Only reads to end, on SQLite: end them and take the write lock on the same
            # connection. pysqlite's own transaction handling is off (see configure_sqlite),
            # so these two statements are all SQLite sees; the ORM's commit, pool check-in
            # and check-out would cost more than the rest of a booking.
            connection = real.connection()
            connection.exec_driver_sql("COMMIT")
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            begun = True
        else:
            keep_loaded_and_end_reads(real)
    if not begun:
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
