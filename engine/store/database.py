"""Opening a database: URL resolution, SQLite settings, migrations on first use."""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.pool import QueuePool

DEFAULT_FILE = "smartcity.db"
URL_VARIABLE = "SMARTCITY_DATABASE_URL"
# Key of the PostgreSQL advisory lock that orders appends (global positions commit in order).
APPEND_LOCK_KEY = zlib.crc32(b"smartcity.events.append")
MIGRATE_LOCK_KEY = APPEND_LOCK_KEY + 1
ADVISORY_XACT_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def resolve_url(url: str | None = None) -> str:
    """``--db`` wins, then $SMARTCITY_DATABASE_URL, then a SQLite file in the working directory."""
    url = url or os.environ.get(URL_VARIABLE)
    if not url:
        return f"sqlite:///{Path.cwd() / DEFAULT_FILE}"
    if "://" not in url:  # a bare path means a SQLite file
        return f"sqlite:///{Path(url).resolve()}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if ":memory:" in url:
            engine = create_engine(url)
        else:
            # Keep connections open between commands (a pool, not NullPool): opening one
            # re-ran the pragmas, and closing the last one checkpointed the WAL and deleted
            # it, so every command paid ~3 ms more than its durable commit (bench/ measured
            # 146 commands/s against 1,900 bare rows/s). No limit on connections, as before.
            engine = create_engine(url, poolclass=QueuePool, pool_size=5, max_overflow=-1)
            _forget_connections_after_fork(engine)
        _configure_sqlite(engine)
    else:
        engine = create_engine(url, pool_size=5, max_overflow=5)
        _forget_connections_after_fork(engine)
        _ping_idle_connections(engine)
    return engine


PING_AFTER_IDLE = 1.0  # seconds a pooled connection may rest before it is pinged on checkout


def _ping_idle_connections(engine: Engine) -> None:
    """pool_pre_ping, but only for connections that rested more than PING_AFTER_IDLE: the
    ping is a round trip, and every command checks a connection out three or four times in
    quick succession (a fifth of a one-event append on PostgreSQL). A dead connection is
    replaced on checkout, as with pool_pre_ping; one that died within the last second fails
    its statement and is invalidated (flows retry such errors)."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["rested_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _rest(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        if record is not None:
            record.info["rested_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        if time.monotonic() - record.info.get("rested_since", 0.0) < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(str(exc)) from exc
            raise


def _forget_connections_after_fork(engine: Engine) -> None:
    """A pooled connection inherited through fork() belongs to the parent: never reuse it."""

    @event.listens_for(engine, "connect")
    def _remember_pid(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["pid"] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _check_pid(_dbapi_connection, record, proxy):  # type: ignore[no-untyped-def]
        if record.info.get("pid", os.getpid()) != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise DisconnectionError("connection was opened in another process")


def _configure_sqlite(engine: Engine) -> None:
    """WAL with synchronous=FULL (every commit durable), a generous busy timeout, and
    transactions that take the write lock up front (BEGIN IMMEDIATE) when they will write,
    so two writers queue instead of failing on a lock upgrade."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        if conn.get_execution_options().get("smartcity_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _alembic_config(connection) -> Config:  # type: ignore[no-untyped-def]
    cfg = Config()
    cfg.set_main_option("script_location", "engine.store:migrations")
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", "engine.store:migrations")
    return ScriptDirectory.from_config(cfg).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe when several processes start at once."""
    if revision == "head" and current_revision(engine) == head_revision():
        return
    for attempt in range(3):
        try:
            with engine.connect().execution_options(smartcity_write=True) as conn:
                if engine.dialect.name == "postgresql":
                    with conn.begin():
                        conn.execute(ADVISORY_XACT_LOCK, {"key": MIGRATE_LOCK_KEY})
                        command.upgrade(_alembic_config(conn), revision)
                else:
                    command.upgrade(_alembic_config(conn), revision)
                    conn.commit()
            return
        except DBAPIError:
            # Another process created the tables first; look again.
            if attempt == 2:
                raise
            if revision == "head" and current_revision(engine) == head_revision():
                return
