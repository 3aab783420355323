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
from collections.abc import Sequence
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


_SCALARS = frozenset({str, int, bool, type(None)})


def _check(value: Any, path: str) -> None:
    """Refuse floats anywhere in ``value``. Exact built-in types are checked inline (most
    of a payload is strings and ints: walking it call by call was most of an encode);
    anything else goes through ``_check_any``, which refuses the same values."""
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str and not isinstance(k, str):
                raise ValidationError(FieldError(path, f"key {k!r} is not a string"))
            if type(v) not in _SCALARS:
                _check(v, f"{path}.{k}")
    elif kind is list or kind is tuple:
        for i, v in enumerate(value):
            if type(v) not in _SCALARS:
                _check(v, f"{path}[{i}]")
    else:
        _check_any(value, path)


def _check_any(value: Any, path: str) -> None:
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
    utc = moment.astimezone(UTC)
    if utc.year >= 1000:  # the same text as the strftime below, in a fifth of the time
        return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _lp(h: Any, text: str | bytes) -> None:
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    h.update(len(data).to_bytes(_LEN, "big"))
    h.update(data)


def _prefixed(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(_LEN, "big") + data


class _Repeated(dict[str | int, bytes]):
    """Length-prefixed encodings of values that repeat from event to event (stream ids,
    event types, actors, roles; versions and schema versions as decimal text):
    verification hashes millions of events, and encoding each field again is most of its
    cost. Bounded, so memory stays flat."""

    def __missing__(self, key: str | int) -> bytes:
        value = _prefixed(str(key))
        if len(self) >= 50_000:
            self.clear()
        self[key] = value
        return value


_REPEATED = _Repeated()
_NUMBERS = _Repeated()  # versions apart, so they never push the texts out
_HEX64 = (64).to_bytes(_LEN, "big")
_sha256 = hashlib.sha256


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
    """SHA-256 over the length-prefixed fields (see the module docstring), as hex."""
    return _sha256(previous_field(previous) + tail_with(
        stream_id, version, event_type, schema_version,
        shared_fields(actor_id, actor_role, occurred_at, command_id, correlation_id,
                      causation_id), payload)).hexdigest()


def tail_with(stream_id: str, version: int, event_type: str, schema_version: int,
              shared: bytes, payload: bytes) -> bytes:
    """What an event's hash covers after the previous hash, the fields its command's events
    share given encoded (``shared_fields``): ``event_hash`` is SHA-256 over
    ``previous_field(previous) + tail_with(...)``. Verification splits the two, so an event
    can be hashed once the hash before it is known, and encodes a command's shared fields
    once for its events, which lie together in the log (see ``audit.ChainChecker``)."""
    rep = _REPEATED
    return b"".join((
        rep[stream_id], _NUMBERS[version], rep[event_type], _NUMBERS[schema_version],
        shared, len(payload).to_bytes(_LEN, "big"), payload,
    ))


def previous_field(previous: str) -> bytes:
    """The previous hash, length-prefixed (a hex digest's prefix is always the same)."""
    if len(previous) == 64 and previous.isascii():
        return _HEX64 + previous.encode("ascii")
    return _prefixed(previous)


def shared_fields(actor_id: str, actor_role: str, occurred_at: str, command_id: str,
                  correlation_id: str, causation_id: str) -> bytes:
    """The fields every event of one command shares, length-prefixed, in hash order."""
    rep = _REPEATED
    return b"".join((
        rep[actor_id],
        rep[actor_role],
        _prefixed(occurred_at),
        _prefixed(command_id),
        rep[correlation_id] if correlation_id != command_id else _prefixed(correlation_id),
        rep[causation_id] if not causation_id else _prefixed(causation_id),
    ))


def chain_hashes(
    previous: str,
    stream_id: str,
    first_version: int,
    items: Sequence[tuple[str, int, bytes]],
    actor_id: str,
    actor_role: str,
    occurred_at: str,
    command_id: str,
    correlation_id: str,
    causation_id: str,
) -> list[str]:
    """``event_hash`` of each of a batch's events ``(event_type, schema_version, payload)``,
    versions from ``first_version`` on, each chained to the one before: the same bytes are
    hashed, but the fields one command shares are encoded once for the whole batch."""
    shared = shared_fields(actor_id, actor_role, occurred_at, command_id, correlation_id,
                           causation_id)
    prev = previous_field(previous)
    out = []
    version = first_version
    for event_type, schema_version, payload in items:
        digest = _sha256(prev + tail_with(stream_id, version, event_type, schema_version,
                                          shared, payload)).hexdigest()
        out.append(digest)
        prev = _HEX64 + digest.encode("ascii")
        version += 1
    return out


def combine_heads(heads: dict[str, str]) -> str:
    """One hash over every stream's head: record it elsewhere as an anchor."""
    h = hashlib.sha256()
    for stream_id in sorted(heads):
        _lp(h, stream_id)
        _lp(h, heads[stream_id])
    return h.hexdigest()
