"""Canonical payload bytes and the per-stream SHA-256 hash chain.

The hash of an event is SHA-256 over these fields, each UTF-8 encoded and
prefixed by its byte length as an 8-byte big-endian integer, in this order:

    previous hash (hex, "" for a stream's first event), stream id, version,
    event type, schema version, actor id, actor role, occurred at (ISO 8601 UTC
    text exactly as stored), command id, correlation id, causation id, payload

The payload bytes are canonical JSON written once at append (sorted keys, no
spaces, UTF-8; floats are refused, so orjson's output equals RFC 8785's).
Verification re-hashes the stored bytes and never re-serialises, so an outside
auditor can check an export with nothing but SHA-256. See docs/audit.md.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from engine.errors import FieldError, ValidationError

GENESIS = ""
_LEN = 8


def canonical_json(payload: Any) -> bytes:
    """Encode ``payload`` as canonical JSON bytes; refuses floats and non-string keys."""
    _check(payload, "payload")
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def _check(value: Any, path: str) -> None:
    if isinstance(value, float):
        raise ValidationError(
            FieldError(path, "floating-point numbers are not stored in the audit log",
                       fix="use an integer or a decimal string")
        )
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(FieldError(path, f"key {k!r} is not a string"))
            _check(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")


def format_time(moment: datetime) -> str:
    """UTC, microseconds, 'Z': fixed width, so the text sorts as the time does."""
    if moment.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _lp(h: Any, text: str | bytes) -> None:
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    h.update(len(data).to_bytes(_LEN, "big"))
    h.update(data)


def event_hash(
    previous: str,
    stream_id: str,
    version: int,
    event_type: str,
    schema_version: int,
    actor_id: str,
    actor_role: str,
    occurred_at: str,
    command_id: str,
    correlation_id: str,
    causation_id: str,
    payload: bytes,
) -> str:
    h = hashlib.sha256()
    for part in (
        previous,
        stream_id,
        str(version),
        event_type,
        str(schema_version),
        actor_id,
        actor_role,
        occurred_at,
        command_id,
        correlation_id,
        causation_id,
    ):
        _lp(h, part)
    _lp(h, payload)
    return h.hexdigest()


def combine_heads(heads: dict[str, str]) -> str:
    """One hash over every stream's head: record it elsewhere as an anchor."""
    h = hashlib.sha256()
    for stream_id in sorted(heads):
        _lp(h, stream_id)
        _lp(h, heads[stream_id])
    return h.hexdigest()
