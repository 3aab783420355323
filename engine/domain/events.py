"""Domain events: frozen, past-tense pydantic models registered by name and schema version.

Stored payloads of older schema versions are upcast on read by a chain of small
``upcast_vN_vN+1(state)`` functions (see ``upcaster``), so history never has to be rewritten.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict
from pydantic_core import to_jsonable_python

from engine.chain import canonical_json
from engine.errors import SmartCityError
from engine.records import NewEvent, StoredEvent


class Event(BaseModel):
    """Base of every domain event."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: ClassVar[int] = 1


E = TypeVar("E", bound=type[Event])

_REGISTRY: dict[str, type[Event]] = {}
_UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


def event(cls: E) -> E:
    """Class decorator: register an event type under its class name."""
    name = cls.__name__
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise SmartCityError(f"event type {name!r} registered twice")
    _REGISTRY[name] = cls
    return cls


def upcaster(event_type: str, from_version: int) -> Callable[[Callable[[dict], dict]], Callable[[dict], dict]]:  # type: ignore[type-arg]
    """Register ``fn(payload) -> payload`` turning version ``from_version`` into the next."""

    def register(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:  # type: ignore[type-arg]
        _UPCASTERS[(event_type, from_version)] = fn
        return fn

    return register


def event_class(name: str) -> type[Event]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SmartCityError(f"unknown event type {name!r} in the log") from None


def registered_events() -> dict[str, type[Event]]:
    return dict(_REGISTRY)


def encode(ev: Event) -> NewEvent:
    payload = ev.model_dump(mode="json")
    return NewEvent(type(ev).__name__, type(ev).schema_version, canonical_json(payload))


def upcast(event_type: str, schema_version: int, data: dict[str, Any]) -> dict[str, Any]:
    target = event_class(event_type).schema_version
    version = schema_version
    while version < target:
        try:
            step = _UPCASTERS[(event_type, version)]
        except KeyError:
            raise SmartCityError(
                f"no upcaster for {event_type} from schema version {version} to {version + 1}"
            ) from None
        data = step(data)
        version += 1
    if version > target:
        raise SmartCityError(
            f"{event_type} has schema version {version}, newer than this engine knows ({target}); "
            "upgrade the engine"
        )
    return data


def event_data(event_type: str, schema_version: int, payload: bytes | str) -> dict[str, Any]:
    """A stored event's JSON form at the current schema version, without building the event
    object: what a fold needs. The payload was validated when it was written and is covered
    by the hash chain; older versions are upcast and fields added since (with a default)
    are filled in, so the result has every field the current event dumps."""
    data = orjson.loads(payload)
    shape = _SHAPES.get(event_type) or _shape(event_type)
    if schema_version != shape[0]:
        data = upcast(event_type, schema_version, data)
    if len(data) != shape[1]:
        data = {**copy.deepcopy(shape[2]), **data}
    return data


_SHAPES: dict[str, tuple[int, int, dict[str, Any]]] = {}


def _shape(event_type: str) -> tuple[int, int, dict[str, Any]]:
    """An event type's schema version, field count and the JSON form of its defaults."""
    cls = event_class(event_type)
    fields = cls.model_fields
    defaults = to_jsonable_python({name: info.get_default(call_default_factory=True)
                                   for name, info in fields.items() if not info.is_required()})
    found = _SHAPES[event_type] = (cls.schema_version, len(fields), defaults)
    return found


def decode(stored: StoredEvent) -> Event:
    cls = event_class(stored.event_type)
    data = orjson.loads(stored.payload)
    if stored.schema_version != cls.schema_version:
        data = upcast(stored.event_type, stored.schema_version, data)
    return cls.model_validate(data)
