"""The thin records the store reads and writes: no domain knowledge here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event ready to append: its type and payload already encoded."""

    event_type: str
    schema_version: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class EventMeta:
    """Who caused a batch, and why; the same for every event of one command."""

    actor_id: str
    actor_role: str
    command_id: str
    correlation_id: str
    causation_id: str = ""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the append-only log, exactly as stored."""

    position: int
    stream_id: str
    version: int
    event_type: str
    schema_version: int
    payload: bytes
    actor_id: str
    actor_role: str
    occurred_at: str
    command_id: str
    correlation_id: str
    causation_id: str
    hash: str
