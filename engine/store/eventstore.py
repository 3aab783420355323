"""The append-only, hash-chained event store on SQLAlchemy (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from engine.chain import GENESIS, event_hash, format_time
from engine.errors import ConcurrencyError, FieldError, ValidationError
from engine.records import EventMeta, NewEvent, StoredEvent
from engine.store.database import ADVISORY_XACT_LOCK, APPEND_LOCK_KEY, make_engine, migrate, resolve_url
from engine.store.schema import commands, events

_COLUMNS = (
    events.c.position,
    events.c.stream_id,
    events.c.version,
    events.c.event_type,
    events.c.schema_version,
    events.c.payload,
    events.c.actor_id,
    events.c.actor_role,
    events.c.occurred_at,
    events.c.command_id,
    events.c.correlation_id,
    events.c.causation_id,
    events.c.hash,
)


def _row_to_event(row: Sequence) -> StoredEvent:  # type: ignore[type-arg]
    payload = row[5]
    return StoredEvent(
        position=row[0],
        stream_id=row[1],
        version=row[2],
        event_type=row[3],
        schema_version=row[4],
        payload=payload.encode("utf-8") if isinstance(payload, str) else bytes(payload),
        actor_id=row[6],
        actor_role=row[7],
        occurred_at=row[8],
        command_id=row[9],
        correlation_id=row[10],
        causation_id=row[11],
        hash=row[12],
    )


class EventStore:
    """Append batches to one stream atomically; read a stream or the whole log."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None,
                 auto_migrate: bool = True):
        self.url = resolve_url(url) if engine is None else str(engine.url)
        self.engine = engine if engine is not None else make_engine(self.url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        if auto_migrate:
            migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

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
        try:
            with self.engine.connect().execution_options(smartcity_write=True) as conn:
                with conn.begin():
                    if self.is_postgres:
                        # Serialise appends so global positions become visible in order:
                        # a reader paging by position never skips a late commit.
                        conn.execute(ADVISORY_XACT_LOCK, {"key": APPEND_LOCK_KEY})
                    done = conn.execute(
                        select(commands.c.stream_id, commands.c.first_version,
                               commands.c.last_version)
                        .where(commands.c.command_id == meta.command_id)
                    ).first()
                    if done is not None:
                        return self._read_versions(conn, done[0], done[1], done[2])
                    head = conn.execute(
                        select(events.c.version, events.c.hash)
                        .where(events.c.stream_id == stream_id)
                        .order_by(events.c.version.desc())
                        .limit(1)
                    ).first()
                    current, previous = (head[0], head[1]) if head else (0, GENESIS)
                    if expected_version is not None and current != expected_version:
                        raise ConcurrencyError(stream_id, expected_version, current)
                    rows = []
                    for offset, new in enumerate(new_events, start=1):
                        version = current + offset
                        digest = event_hash(
                            previous, stream_id, version, new.event_type, new.schema_version,
                            meta.actor_id, meta.actor_role, when, meta.command_id,
                            meta.correlation_id, meta.causation_id, new.payload,
                        )
                        rows.append({
                            "stream_id": stream_id,
                            "version": version,
                            "event_type": new.event_type,
                            "schema_version": new.schema_version,
                            "payload": new.payload.decode("utf-8"),
                            "actor_id": meta.actor_id,
                            "actor_role": meta.actor_role,
                            "occurred_at": when,
                            "command_id": meta.command_id,
                            "correlation_id": meta.correlation_id,
                            "causation_id": meta.causation_id,
                            "hash": digest,
                        })
                        previous = digest
                    positions = conn.execute(
                        insert(events).returning(events.c.position, sort_by_parameter_order=True),
                        rows,
                    ).scalars().all()
                    conn.execute(insert(commands), {
                        "command_id": meta.command_id,
                        "stream_id": stream_id,
                        "first_version": current + 1,
                        "last_version": current + len(rows),
                    })
        except SAIntegrityError as exc:
            # Another writer got there first: either the same command (idempotent) or
            # the same versions of this stream (a conflict).
            recorded = self.events_for_command(meta.command_id)
            if recorded:
                return recorded
            raise ConcurrencyError(stream_id, expected_version if expected_version is not None
                                   else -1) from exc
        return [
            StoredEvent(position=pos, payload=new.payload, **{k: r[k] for k in (
                "stream_id", "version", "event_type", "schema_version", "actor_id",
                "actor_role", "occurred_at", "command_id", "correlation_id",
                "causation_id", "hash")})
            for pos, r, new in zip(positions, rows, new_events, strict=True)
        ]

    # ---------------------------------------------------------------- reading
    def _read_versions(self, conn, stream_id: str, first: int, last: int) -> list[StoredEvent]:  # type: ignore[no-untyped-def]
        result = conn.execute(
            select(*_COLUMNS)
            .where(events.c.stream_id == stream_id, events.c.version.between(first, last))
            .order_by(events.c.version)
        )
        return [_row_to_event(r) for r in result]

    def events_for_command(self, command_id: str) -> list[StoredEvent]:
        with self.engine.connect() as conn:
            done = conn.execute(
                select(commands.c.stream_id, commands.c.first_version, commands.c.last_version)
                .where(commands.c.command_id == command_id)
            ).first()
            if done is None:
                return []
            return self._read_versions(conn, done[0], done[1], done[2])

    def read_stream(self, stream_id: str, from_version: int = 1,
                    to_version: int | None = None) -> list[StoredEvent]:
        """Events of one stream in version order, from ``from_version`` (inclusive)."""
        query = select(*_COLUMNS).where(events.c.stream_id == stream_id,
                                        events.c.version >= from_version)
        if to_version is not None:
            query = query.where(events.c.version <= to_version)
        with self.engine.connect() as conn:
            return [_row_to_event(r) for r in conn.execute(query.order_by(events.c.version))]

    def read_all(self, from_position: int = 0, page_size: int = 2000,
                 stream_prefix: str | None = None) -> Iterator[StoredEvent]:
        """Every event after ``from_position`` in log order, fetched page by page
        (each page its own short read), so memory stays flat for any log size."""
        last = from_position
        while True:
            query = select(*_COLUMNS).where(events.c.position > last)
            if stream_prefix:
                query = query.where(events.c.stream_id.startswith(stream_prefix, autoescape=True))
            query = query.order_by(events.c.position).limit(page_size)
            with self.engine.connect() as conn:
                page = [_row_to_event(r) for r in conn.execute(query)]
            yield from page
            if len(page) < page_size:
                return
            last = page[-1].position

    def stream_version(self, stream_id: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.max(events.c.version)).where(events.c.stream_id == stream_id)
            ).scalar()
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
