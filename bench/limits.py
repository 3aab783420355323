"""The limits: what the database itself does with rows of the same size and table shape,
with no hashing, no validation and no idempotency record.

The bare table has the events table's columns and keys: primary key position, unique
(stream_id, version), and an index on command_id, since the log keeps one key per command
too (the ``commands`` table's primary key; the events table's own command-id index went in
migration 0005). So a bare row updates as many B-trees as an append of ours. Connections
come from the engine's own ``make_engine``, so the pragmas (SQLite WAL, synchronous=FULL,
busy timeout) and PostgreSQL's commit settings are the same as for our figures.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (BigInteger, Column, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint)

metadata = MetaData()
bare_events = Table(
    "bare_events",
    metadata,
    Column("position", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),
    Column("stream_id", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("actor_id", String(200), nullable=False),
    Column("actor_role", String(40), nullable=False),
    Column("occurred_at", String(27), nullable=False),
    Column("command_id", String(200), nullable=False),
    Column("correlation_id", String(200), nullable=False),
    Column("causation_id", String(200), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("stream_id", "version", name="uq_bare_events_stream_version"),
    Index("ix_bare_events_command_id", "command_id"),
)
COLUMNS = [c.name for c in bare_events.columns if c.name != "position"]
FAKE_HASH = "0" * 64


def bare_row(stream: str, version: int, payload: str) -> dict[str, Any]:
    command = str(uuid.uuid4())
    return {"stream_id": stream, "version": version, "event_type": "FormSubmitted",
            "schema_version": 1, "payload": payload, "actor_id": "diskominfo-35.02",
            "actor_role": "regional_officer", "occurred_at": "2018-03-01T08:00:00.000000Z",
            "command_id": command, "correlation_id": command, "causation_id": "",
            "hash": FAKE_HASH}


def create(engine: Any) -> None:
    metadata.create_all(engine)


def insert_sql(postgres: bool) -> str:
    p = "%s" if postgres else "?"
    return f"INSERT INTO bare_events ({', '.join(COLUMNS)}) VALUES ({', '.join([p] * len(COLUMNS))})"
