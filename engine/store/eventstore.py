"""The append-only, hash-chained event store on SQLAlchemy (SQLite or PostgreSQL)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.pool import QueuePool

from engine.chain import GENESIS, chain_hashes, format_time
from engine.errors import ConcurrencyError, FieldError, ValidationError
from engine.records import EventMeta, NewEvent, StoredEvent
from engine.store.database import APPEND_LOCK_KEY, make_engine, migrate, resolve_url
from engine.store.schema import events

# The hot paths (append, read a stream, page through the log, find a command's events) talk
# to the driver through a pooled connection: SQLAlchemy Core's per-statement and per-row work
# was most of an append's cost after the commit itself, and most of a replay's read.
_FIELDS = ("stream_id, version, event_type, schema_version, payload, actor_id, actor_role, "
           "occurred_at, command_id, correlation_id, causation_id, hash")


class _Sql:
    """The statements of the hot paths in the driver's parameter style."""

    def __init__(self, postgres: bool):
        p = "%s" if postgres else "?"
        # SQLite hands the stored text over as bytes; PostgreSQL sends it as text (in the
        # binary protocol: half the time of bytea or of the text protocol), encoded here.
        payload = "payload" if postgres else "CAST(payload AS BLOB)"
        cols = ("position, stream_id, version, event_type, schema_version, " + payload
                + ", actor_id, actor_role, occurred_at, command_id, correlation_id, "
                "causation_id, hash")
        self.lookup_command = ("SELECT stream_id, first_version, last_version FROM commands "
                               f"WHERE command_id = {p}")
        self.head = (f"SELECT version, hash FROM events WHERE stream_id = {p} "
                     "ORDER BY version DESC LIMIT 1")
        self.insert_event = (f"INSERT INTO events ({_FIELDS}) VALUES "
                             f"({', '.join([p] * 12)})")
        self.insert_command = ("INSERT INTO commands (command_id, stream_id, first_version, "
                               f"last_version) VALUES ({p}, {p}, {p}, {p})")
        self.positions = (f"SELECT position FROM events WHERE stream_id = {p} "
                          f"AND version BETWEEN {p} AND {p} ORDER BY version")
        self.read_versions = (f"SELECT {cols} FROM events WHERE stream_id = {p} "
                              f"AND version BETWEEN {p} AND {p} ORDER BY version")
        self.read_from = (f"SELECT {cols} FROM events WHERE stream_id = {p} "
                          f"AND version >= {p} ORDER BY version")
        self.read_payloads = ("SELECT version, event_type, schema_version, payload FROM events "
                              f"WHERE stream_id = {p} AND version >= {p} ORDER BY version")
        self.read_page_stream = (f"SELECT {cols} FROM events WHERE position > {p} "
                                 f"AND position <= {p} AND stream_id = {p} "
                                 f"ORDER BY position LIMIT {p}")
        self.read_window = (f"SELECT {cols} FROM events WHERE position > {p} "
                            f"AND position <= {p} ORDER BY position")
        self.read_window_prefix = (f"SELECT {cols} FROM events WHERE position > {p} "
                                   f"AND position <= {p} AND stream_id LIKE {p} ESCAPE '/' "
                                   "ORDER BY position")
        self.next_position = (f"SELECT min(position) FROM events WHERE position > {p} "
                              f"AND position <= {p}")
        self.stream_version = f"SELECT max(version) FROM events WHERE stream_id = {p}"
        if postgres:
            # One statement (so, outside a transaction, one round trip and one durable
            # commit): take the append lock, check that the stream's head is still the one
            # the caller's state was built on, insert the events in version order (so their
            # positions are allocated under the lock, in version order) and the command's
            # row. Nothing is written when the head moved; a taken version or command id
            # fails on the unique indexes as in the step-by-step path. The arrays travel in
            # binary (text arrays are escaped element by element in Python otherwise).
            self.append_pg = (
                "WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(%(key)s) AS locked), "
                "head AS (SELECT version, hash FROM events WHERE stream_id = %(stream)s "
                "ORDER BY version DESC LIMIT 1), "
                f"ins AS (INSERT INTO events ({_FIELDS}) "
                "SELECT %(stream)s, u.version, u.event_type, u.schema_version, u.payload, "
                "%(actor)s, %(role)s, %(at)s, %(command)s, %(correlation)s, %(causation)s, "
                "u.hash FROM lock, unnest(%(versions)b::int[], %(types)b::text[], "
                "%(schemas)b::int[], %(payloads)b::text[], %(hashes)b::text[]) "
                "WITH ORDINALITY AS u(version, event_type, schema_version, payload, hash, n) "
                "WHERE {head} ORDER BY u.n RETURNING position, version), "
                "cmd AS (INSERT INTO commands (command_id, stream_id, first_version, "
                "last_version) SELECT %(command)s, %(stream)s, %(first)s, %(last)s "
                "WHERE EXISTS (SELECT 1 FROM ins)) "
                "SELECT position, version FROM ins")
            # One event (most commands): plain parameters instead of arrays, which cost
            # more to send than the rest of the statement.
            self.append_pg_one = self.append_pg.replace(
                "u.version, u.event_type, u.schema_version, u.payload, ",
                "%(version)s::int, %(type)s::text, %(schema)s::int, %(payload)s::text, "
            ).replace("u.hash FROM lock, unnest(%(versions)b::int[], %(types)b::text[], "
                      "%(schemas)b::int[], %(payloads)b::text[], %(hashes)b::text[]) "
                      "WITH ORDINALITY AS u(version, event_type, schema_version, payload, "
                      "hash, n) ", "%(hash)s::text FROM lock "
                      ).replace(" ORDER BY u.n", "")
            heads = {"new": "NOT EXISTS (SELECT 1 FROM head)",
                     "after": "EXISTS (SELECT 1 FROM head WHERE head.version = "
                              "%(current)s::int AND head.hash = %(previous)s::text)"}
            self.append_pg_many = {k: self.append_pg.format(head=v) for k, v in heads.items()}
            self.append_pg_single = {k: self.append_pg_one.format(head=v)
                                     for k, v in heads.items()}
            assert "u." not in self.append_pg_one


# SQLite lets one writer in at a time; a writer that finds the lock taken sleeps in SQLite's
# busy handler (1, 2, 5, 10 ... 100 ms), so threads of one process appending at once (flow
# tasks) spent most of their time asleep. They queue on this lock instead; other processes
# still wait through busy_timeout.
_SQLITE_WRITERS: dict[str, threading.Lock] = {}
_SQLITE_WRITERS_GUARD = threading.Lock()


def _sqlite_writer(url: str) -> threading.Lock:
    with _SQLITE_WRITERS_GUARD:
        return _SQLITE_WRITERS.setdefault(url, threading.Lock())


# Append connections a forked child inherited from its parent: kept referenced and never
# used, closed or returned to the pool from the child.
_INHERITED: list[Any] = []


def _like_prefix(prefix: str) -> str:
    """``prefix`` as a LIKE pattern with '/' escaping (as SQLAlchemy's autoescape)."""
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


class EventStore:
    """Append batches to one stream atomically; read a stream or the whole log."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None,
                 auto_migrate: bool = True):
        self.url = resolve_url(url) if engine is None else str(engine.url)
        self.engine = engine if engine is not None else make_engine(self.url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._driver = self.engine.dialect.loaded_dbapi
        self._sql = _Sql(self.is_postgres)
        # PostgreSQL: the last (version, hash) this process saw committed per stream. Only a
        # hint: the single-statement append checks it in the database and falls back to the
        # step-by-step path when it is stale, so a wrong entry can never break a chain.
        self._heads: dict[str, tuple[int, str]] = {}
        self._writer: AbstractContextManager[Any] = (
            nullcontext() if self.is_postgres else _sqlite_writer(self.url))
        # A SQLite file: appends go through one connection kept checked out (appends queue
        # on self._writer anyway), which saves a pool checkout and check-in (a reset
        # ROLLBACK) per command: a tenth of a one-event append on top of its commit.
        self._keep_writer = not self.is_postgres and isinstance(self.engine.pool, QueuePool)
        self._writer_raw: Any = None
        self._writer_pid = 0
        if auto_migrate:
            migrate(self.engine)

    def close(self) -> None:
        with self._writer:
            raw, self._writer_raw = self._writer_raw, None
            if raw is not None and self._writer_pid == os.getpid():
                raw.close()
        self.engine.dispose()

    def _events(self, rows: list[Any]) -> list[StoredEvent]:
        if self.is_postgres:
            return [StoredEvent(r[0], r[1], r[2], r[3], r[4], r[5].encode("utf-8"), r[6], r[7],
                                r[8], r[9], r[10], r[11], r[12]) for r in rows]
        return [StoredEvent(*r) for r in rows]

    # ------------------------------------------------------------ driver access
    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A pooled driver connection. Driver errors leave as SQLAlchemy's exceptions (as
        through a SQLAlchemy Connection), and a broken connection is not returned to the pool."""
        raw = self.engine.raw_connection()
        try:
            yield raw
        except self._driver.Error as exc:
            raise self._translated(raw, exc) from exc
        finally:
            raw.close()

    def _translated(self, raw: Any, exc: Exception) -> DBAPIError:
        """Roll back (or, when the connection died, invalidate) and wrap a driver error as
        SQLAlchemy's exception."""
        invalidated = self.engine.dialect.is_disconnect(exc, raw.dbapi_connection, None)
        if invalidated:
            raw.invalidate(exc)
        else:
            with suppress(self._driver.Error):
                raw.rollback()
        return DBAPIError.instance(None, None, exc, self._driver.Error,
                                   connection_invalidated=invalidated,
                                   dialect=self.engine.dialect)

    @contextmanager
    def _append_connection(self) -> Iterator[Any]:
        """The connection an append writes through (the caller holds ``self._writer``)."""
        if not self._keep_writer:
            with self._connection() as raw:
                yield raw
            return
        raw = self._writer_raw
        if raw is None or self._writer_pid != os.getpid():
            if raw is not None:  # inherited through fork: the parent's, never touched here
                _INHERITED.append(raw)
            raw = self._writer_raw = self.engine.raw_connection()
            self._writer_pid = os.getpid()
        try:
            yield raw
        except self._driver.Error as exc:
            error = self._translated(raw, exc)
            if error.connection_invalidated:
                self._writer_raw = None
                raw.close()
            raise error from exc

    @contextmanager
    def _read(self) -> Iterator[Any]:
        """A cursor for reads, each statement its own snapshot (SQLite runs single statements
        in autocommit already; on PostgreSQL this saves the BEGIN and ROLLBACK round trips)."""
        with self._connection() as raw:
            if self.is_postgres:
                driver = raw.dbapi_connection
                driver.autocommit = True
                try:
                    yield driver.cursor(binary=True)
                finally:
                    if not driver.closed:
                        driver.autocommit = False
            else:
                yield raw.cursor()

    # ---------------------------------------------------------------- writing
    def append(
        self,
        stream_id: str,
        expected_version: int | None,
        new_events: Sequence[NewEvent],
        meta: EventMeta,
        occurred_at: datetime | None = None,
    ) -> list[StoredEvent]:
        """Append ``new_events`` after ``expected_version`` (0 for a new stream) in one
        transaction, or raise ConcurrencyError and write nothing.

        If ``meta.command_id`` was recorded before, nothing is written and the events
        first recorded for it are returned (commands are idempotent).
        """
        if not meta.command_id:
            raise ValidationError(FieldError("command_id", "must not be empty"))
        if not new_events:
            return self.events_for_command(meta.command_id)
        when = format_time(occurred_at or datetime.now(UTC))
        if self.is_postgres:
            head = self._heads.get(stream_id)
            if head is not None and expected_version in (None, head[0]):
                stored = self._append_pg_one_statement(stream_id, head, new_events, meta, when)
                if stored is not None:
                    return stored
        try:
            with self._writer, self._append_connection() as raw:
                return self._append_step_by_step(raw, stream_id, expected_version, new_events,
                                                 meta, when)
        except SAIntegrityError as exc:
            # Another writer got there first: either the same command (idempotent) or
            # the same versions of this stream (a conflict).
            recorded = self.events_for_command(meta.command_id)
            if recorded:
                return recorded
            raise ConcurrencyError(stream_id, expected_version if expected_version is not None
                                   else -1) from exc

    def _chain(self, stream_id: str, current: int, previous: str,
               new_events: Sequence[NewEvent], meta: EventMeta,
               when: str) -> tuple[list[int], list[str]]:
        hashes = chain_hashes(
            previous, stream_id, current + 1,
            [(new.event_type, new.schema_version, new.payload) for new in new_events],
            meta.actor_id, meta.actor_role, when, meta.command_id, meta.correlation_id,
            meta.causation_id,
        )
        return list(range(current + 1, current + 1 + len(hashes))), hashes

    def _stored(self, stream_id: str, positions: Sequence[int], versions: Sequence[int],
                hashes: Sequence[str], new_events: Sequence[NewEvent], meta: EventMeta,
                when: str) -> list[StoredEvent]:
        stored = [
            StoredEvent(pos, stream_id, version, new.event_type, new.schema_version,
                        new.payload, meta.actor_id, meta.actor_role, when, meta.command_id,
                        meta.correlation_id, meta.causation_id, digest)
            for pos, version, digest, new in zip(positions, versions, hashes, new_events,
                                                 strict=True)
        ]
        if self.is_postgres:
            if len(self._heads) >= 100_000:
                self._heads.clear()
            self._heads[stream_id] = (versions[-1], hashes[-1])
        return stored

    def _append_step_by_step(self, raw: Any, stream_id: str, expected_version: int | None,
                             new_events: Sequence[NewEvent], meta: EventMeta,
                             when: str) -> list[StoredEvent]:
        """One transaction: take the write lock, read the head, check the expected version
        (or return the recorded events of a repeated command), insert, commit."""
        sql = self._sql
        cur = raw.cursor()
        try:
            if self.is_postgres:
                # Serialise appends so global positions become visible in order:
                # a reader paging by position never skips a late commit.
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK_KEY,))
            else:
                cur.execute("BEGIN IMMEDIATE")
            # A repeated command is found on the way, without a lookup first: by the head
            # check (its events moved the head), or by the commands row's primary key
            # (caught in ``append``, which returns the recorded events).
            cur.execute(sql.head, (stream_id,))
            head = cur.fetchone()
            current, previous = (head[0], head[1]) if head else (0, GENESIS)
            if expected_version is not None and current != expected_version:
                recorded = self._recorded(cur, meta.command_id)
                if recorded is not None:
                    raw.rollback()  # nothing written
                    return recorded
                raise ConcurrencyError(stream_id, expected_version, current)
            versions, hashes = self._chain(stream_id, current, previous, new_events, meta, when)
            if self.is_postgres:
                cur.execute(*self._pg_statement(stream_id, current, previous, versions,
                                                hashes, new_events, meta, when))
                positions = [p for p, _ in sorted(cur.fetchall(), key=lambda r: r[1])]
            else:
                rows = [(stream_id, version, new.event_type, new.schema_version,
                         new.payload.decode("utf-8"), meta.actor_id, meta.actor_role, when,
                         meta.command_id, meta.correlation_id, meta.causation_id, digest)
                        for version, digest, new in zip(versions, hashes, new_events)]
                if len(rows) == 1:
                    cur.execute(sql.insert_event, rows[0])
                    positions = [cur.lastrowid]
                else:
                    cur.executemany(sql.insert_event, rows)
                    cur.execute(sql.positions, (stream_id, versions[0], versions[-1]))
                    positions = [r[0] for r in cur.fetchall()]
                cur.execute(sql.insert_command,
                            (meta.command_id, stream_id, versions[0], versions[-1]))
            if len(positions) != len(versions):  # pragma: no cover - the head was checked
                raise ConcurrencyError(stream_id, current, -1)
            raw.commit()
        except BaseException:
            with suppress(self._driver.Error):
                raw.rollback()
            raise
        return self._stored(stream_id, positions, versions, hashes, new_events, meta, when)

    def _recorded(self, cur: Any, command_id: str) -> list[StoredEvent] | None:
        """The events ``command_id`` recorded (None if it recorded none), read through
        ``cur``: inside an append's transaction, or a read of its own."""
        cur.execute(self._sql.lookup_command, (command_id,))
        done = cur.fetchone()
        if done is None:
            return None
        cur.execute(self._sql.read_versions, done)
        return self._events(cur.fetchall())

    def _pg_statement(self, stream_id: str, current: int, previous: str, versions: list[int],
                      hashes: list[str], new_events: Sequence[NewEvent], meta: EventMeta,
                      when: str) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {
            "key": APPEND_LOCK_KEY, "stream": stream_id, "current": current,
            "previous": previous, "actor": meta.actor_id, "role": meta.actor_role, "at": when,
            "command": meta.command_id, "correlation": meta.correlation_id,
            "causation": meta.causation_id, "first": versions[0], "last": versions[-1],
        }
        head = "new" if current == 0 else "after"
        if len(new_events) == 1:
            new = new_events[0]
            params.update(version=versions[0], type=new.event_type,
                          schema=new.schema_version, payload=new.payload.decode("utf-8"),
                          hash=hashes[0])
            return self._sql.append_pg_single[head], params
        params.update(versions=versions, types=[e.event_type for e in new_events],
                      schemas=[e.schema_version for e in new_events],
                      payloads=[e.payload.decode("utf-8") for e in new_events], hashes=hashes)
        return self._sql.append_pg_many[head], params

    def _append_pg_one_statement(self, stream_id: str, head: tuple[int, str],
                                 new_events: Sequence[NewEvent], meta: EventMeta,
                                 when: str) -> list[StoredEvent] | None:
        """Append on the head this process last saw, as one statement committed on its own
        (synchronous_commit as configured: on by default). None when that head is stale or
        the command or a version was taken: the caller then takes the step-by-step path,
        which returns a repeated command's events or raises ConcurrencyError."""
        current, previous = head
        versions, hashes = self._chain(stream_id, current, previous, new_events, meta, when)
        statement = self._pg_statement(stream_id, current, previous, versions, hashes,
                                       new_events, meta, when)
        try:
            with self._read() as cur:  # autocommit: the statement is its own transaction
                cur.execute(*statement)
                rows = cur.fetchall()
        except SAIntegrityError:
            self._heads.pop(stream_id, None)
            return None
        if len(rows) != len(versions):  # the head moved: nothing was written
            self._heads.pop(stream_id, None)
            return None
        positions = [p for p, _ in sorted(rows, key=lambda r: r[1])]
        return self._stored(stream_id, positions, versions, hashes, new_events, meta, when)

    # ---------------------------------------------------------------- reading
    def events_for_command(self, command_id: str) -> list[StoredEvent]:
        with self._read() as cur:
            return self._recorded(cur, command_id) or []

    def read_stream(self, stream_id: str, from_version: int = 1,
                    to_version: int | None = None) -> list[StoredEvent]:
        """Events of one stream in version order, from ``from_version`` (inclusive)."""
        with self._read() as cur:
            if to_version is None:
                cur.execute(self._sql.read_from, (stream_id, from_version))
            else:
                cur.execute(self._sql.read_versions, (stream_id, from_version, to_version))
            stored = self._events(cur.fetchall())
        if self.is_postgres and stored and to_version is None:
            last = stored[-1]
            self._heads[stream_id] = (last.version, last.hash)
        return stored

    def read_payloads(self, stream_id: str,
                      from_version: int = 1) -> list[tuple[int, str, int, str]]:
        """``(version, event type, schema version, payload text)`` of one stream's events in
        version order: only what a fold needs (a plan's replay reads nothing else)."""
        with self._read() as cur:
            cur.execute(self._sql.read_payloads, (stream_id, from_version))
            return cur.fetchall()

    def read_all(self, from_position: int = 0, page_size: int = 2000,
                 stream_prefix: str | None = None) -> Iterator[StoredEvent]:
        """Every event after ``from_position`` in log order, fetched page by page
        (each page its own short read), so memory stays flat for any log size."""
        for page in self.read_rows(from_position, page_size=page_size, prefix=stream_prefix):
            yield from self._events(page)

    def read_rows(self, after: int = 0, upto: int | None = None, *, page_size: int = 2000,
                  stream_id: str | None = None,
                  prefix: str | None = None) -> Iterator[list[tuple[Any, ...]]]:
        """Pages of raw rows (``StoredEvent``'s fields in order; the payload as bytes on
        SQLite, as text on PostgreSQL) with ``after < position <= upto``, in log order,
        of one stream, of the streams whose id starts with ``prefix``, or of all. Each page
        is its own short read, so memory stays flat for any log size."""
        if stream_id is not None:  # one stream: its own rows, a page at a time
            last, high = after, upto if upto is not None else 2**62
            while True:
                with self._read() as cur:
                    cur.execute(self._sql.read_page_stream, (last, high, stream_id, page_size))
                    page = cur.fetchall()
                if page:
                    yield page
                if len(page) < page_size:
                    return
                last = page[-1][0]
        # The log or a prefix: a window of ``page_size`` positions at a time. A range query
        # with LIMIT over the whole rest of the log made PostgreSQL, on a table without
        # statistics yet (fresh, or just restored), fetch and sort all of the rest for every
        # page; a window keeps every query as small as its page, whatever the plan.
        pattern = _like_prefix(prefix) if prefix else None
        last = after
        high = upto if upto is not None else self.last_position()
        while True:
            while last < high:
                end = min(last + page_size, high)
                with self._read() as cur:
                    if pattern is None:
                        cur.execute(self._sql.read_window, (last, end))
                    else:
                        cur.execute(self._sql.read_window_prefix, (last, end, pattern))
                    page = cur.fetchall()
                    if not page:  # a gap in the positions (rolled back appends): skip it
                        cur.execute(self._sql.next_position, (end, high))
                        following = cur.fetchone()[0]
                        end = high if following is None else following - 1
                if page:
                    yield page
                last = end
            if upto is not None:
                return
            newer = self.last_position()  # appended while this was read: read those too
            if newer <= high:
                return
            high = newer

    def position_bounds(self) -> tuple[int, int]:
        """The first and last position in the log ((0, 0) when it is empty)."""
        with self._read() as cur:
            cur.execute("SELECT min(position), max(position) FROM events")
            low, high = cur.fetchone()
        return (int(low) - 1, int(high)) if low is not None else (0, 0)

    def stream_version(self, stream_id: str) -> int:
        with self._read() as cur:
            cur.execute(self._sql.stream_version, (stream_id,))
            value = cur.fetchone()[0]
        return int(value or 0)

    def stream_ids(self, prefix: str = "") -> list[str]:
        query = select(events.c.stream_id).where(events.c.version == 1)
        if prefix:
            query = query.where(events.c.stream_id.startswith(prefix, autoescape=True))
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(events.c.stream_id)).scalars())

    def heads(self, prefix: str = "") -> dict[str, tuple[int, str]]:
        """The last version and hash of every stream: the anchor an auditor records."""
        latest = (
            select(events.c.stream_id, func.max(events.c.version).label("v"))
            .group_by(events.c.stream_id)
        )
        if prefix:
            latest = latest.where(events.c.stream_id.startswith(prefix, autoescape=True))
        sub = latest.subquery()
        query = select(events.c.stream_id, events.c.version, events.c.hash).join(
            sub, (events.c.stream_id == sub.c.stream_id) & (events.c.version == sub.c.v)
        )
        with self.engine.connect() as conn:
            return {r[0]: (r[1], r[2]) for r in conn.execute(query)}

    def last_position(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(events.c.position))).scalar() or 0)
