"""Tables of the event store (SQLAlchemy Core). Alembic migrations create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
Position = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("position", Position, primary_key=True, autoincrement=True),
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
    UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
    Index("ix_events_command_id", "command_id"),
)

# One row per command that wrote events: makes commands idempotent across processes.
commands = Table(
    "commands",
    metadata,
    Column("command_id", String(200), primary_key=True),
    Column("stream_id", String(200), nullable=False),
    Column("first_version", Integer, nullable=False),
    Column("last_version", Integer, nullable=False),
)
