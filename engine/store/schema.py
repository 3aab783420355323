"""Tables of the event store (SQLAlchemy Core). Alembic migrations create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
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
)

# One row per command that wrote events: makes commands idempotent across processes, and
# is how a command's events are found. On SQLite its rows live in the key's B-tree
# (WITHOUT ROWID): one page written per append instead of a table's and an index's.
commands = Table(
    "commands",
    metadata,
    Column("command_id", String(200), primary_key=True),
    Column("stream_id", String(200), nullable=False),
    Column("first_version", Integer, nullable=False),
    Column("last_version", Integer, nullable=False),
    sqlite_with_rowid=False,
)

# ---------------------------------------------------------------------------- read models
# Rebuilt from the log at any time; each projection records the last position it applied
# in the same transaction as its rows, so a crash never applies an event twice.
projection_checkpoints = Table(
    "projection_checkpoints",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("events", BigInteger, nullable=False),
)

plan_progress = Table(
    "plan_progress",
    metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("programme_id", String(100), nullable=False),
    Column("region_code", String(10), nullable=False),
    Column("region_name", String(200), nullable=False),
    Column("stage", String(20), nullable=False),
    Column("status", String(10), nullable=False),
    Column("review_round", Integer, nullable=False),
    Column("findings", Integer, nullable=False),
    Column("refusals", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", String(27), nullable=False),
    Index("ix_plan_progress_programme", "programme_id"),
)

form_progress = Table(
    "form_progress",
    metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("stage", String(20), primary_key=True),
    Column("pillar", String(60), primary_key=True),
    Column("form", String(80), primary_key=True),
    Column("submissions", Integer, nullable=False),
)

quick_win_progress = Table(
    "quick_win_progress",
    metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("quick_win_id", String(80), primary_key=True),
    Column("pillar", String(60), nullable=False),
    Column("completion_percent", Integer, nullable=False),
    Column("reports", Integer, nullable=False),
)

# Deadline reminders, recorded once (the key names the deadline) before hooks send them.
reminder_outbox = Table(
    "reminder_outbox",
    metadata,
    Column("reminder_id", String(300), primary_key=True),
    Column("programme_id", String(100), nullable=False),
    Column("region_code", String(10), nullable=False),
    Column("stage", String(20), nullable=False),
    Column("deadline", String(10), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", String(27), nullable=False),
    Column("sent_at", String(27), nullable=True),
    Column("delivered_by", String(200), nullable=False, server_default=""),
)

# People who use the HTTP API: the token itself is never stored, only its SHA-256.
users = Table(
    "users",
    metadata,
    Column("user_id", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(40), nullable=False),
    Column("region", String(10), nullable=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", String(27), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
)
