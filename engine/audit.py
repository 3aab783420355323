"""What auditors need: verify the hash chains, replay, diff, timeline, export, anchors.

Everything here reads the log; nothing writes to it. Verification streams the log
page by page (memory grows with the number of streams, never with the number of
events) and checks, for every event:

- its version follows the previous event of its stream (nothing deleted, inserted
  or reordered),
- its hash equals SHA-256 over its fields and the previous event's hash
  (nothing altered, see engine/chain.py for the exact encoding),
- it was written by a recorded command covering that version (nothing slipped in
  behind the engine's back),

and, at the end, that every stream reaches the last version its commands recorded
(no tail cut off) and, given a recorded anchor, that every anchored event is
still there with its anchored hash (no tail rewritten).
"""

from __future__ import annotations

import csv
import hashlib
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import func, or_, select

from engine.chain import (GENESIS, combine_heads, format_time, previous_field, shared_fields,
                          tail_with)
from engine.domain import plan as P
from engine.domain.events import event_data, registered_events
from engine.domain.programme import programme_stream
from engine.errors import FieldError, NotFound, ValidationError
from engine.records import StoredEvent
from engine.store.eventstore import EventStore
from engine.store.schema import commands, events

EXPORT_FORMAT = "smartcity-audit-export"
EXPORT_VERSION = 1
ANCHOR_FORMAT = "smartcity-anchor"
#: The columns of an export, in the order the hash covers them (position excepted).
EXPORT_FIELDS = ("position", "stream_id", "version", "event_type", "schema_version",
                 "actor_id", "actor_role", "occurred_at", "command_id", "correlation_id",
                 "causation_id", "payload", "hash")
MAX_REPORTED = 100

Progress = Callable[[int], None]


# ---------------------------------------------------------------------------- ids and times
def parse_plan_id(text: str) -> str:
    """``PROGRAMME:REGION`` (or the stream id ``plan:PROGRAMME:REGION``) -> stream id."""
    raw = text.strip()
    body = raw[len("plan:"):] if raw.startswith("plan:") else raw
    programme, sep, region = body.rpartition(":")
    if not sep or not programme or not region:
        raise ValidationError(FieldError(
            "plan", f"{text!r} is not a plan id", fix="write PROGRAMME:REGION, e.g. m100-2018:35.02"))
    return P.plan_stream(programme, region)


def parse_moment(text: str, name: str = "at") -> datetime:
    """An ISO 8601 time (UTC when no offset is given), or a date meaning the end of that day."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(FieldError(
            name, f"{text!r} is not a date or time",
            fix="write 2026-03-01 or 2026-03-01T09:30:00Z")) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_point(text: str, name: str) -> int | datetime:
    """A version number or a moment, as given to ``--from`` / ``--to``."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    return parse_moment(value, name)


# ---------------------------------------------------------------------------- verification
@dataclass(frozen=True, slots=True)
class Break:
    """One place where the log is not what the engine wrote."""

    stream_id: str
    version: int
    reason: str
    expected: str = ""
    found: str = ""
    position: int | None = None

    def describe(self) -> str:
        where = f"{self.stream_id} v{self.version}"
        if self.position is not None:
            where += f" (position {self.position})"
        text = f"{where}: {self.reason}"
        if self.expected or self.found:
            text += f"; expected {self.expected or '-'}, found {self.found or '-'}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"stream_id": self.stream_id, "version": self.version, "position": self.position,
                "reason": self.reason, "expected": self.expected, "found": self.found}


@dataclass
class VerifyReport:
    events: int = 0
    breaks: list[Break] = field(default_factory=list)
    more_breaks: int = 0  # found but not listed: later breaks of a listed stream, or too many
    _broken: set[str] = field(default_factory=set, repr=False)
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    anchor_checked: bool = False
    limit: int | None = field(default=None, repr=False)  # breaks listed (None: MAX_REPORTED)
    processes: int = 1  # how many processes read the log

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first(self) -> Break | None:
        return self.breaks[0] if self.breaks else None

    @property
    def combined(self) -> str:
        return combine_heads({s: h for s, (_, h) in self.heads.items()})

    def add(self, brk: Break) -> None:
        """List the first break of each stream; count the rest (one alteration usually
        breaks everything after it in its stream, e.g. renumbered versions)."""
        limit = MAX_REPORTED if self.limit is None else self.limit
        if brk.stream_id in self._broken or len(self.breaks) >= limit:
            self.more_breaks += 1
            return
        if brk.stream_id not in ("*", "?"):
            self._broken.add(brk.stream_id)
        self.breaks.append(brk)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "events": self.events, "streams": len(self.heads),
                "combined_head": self.combined, "anchor_checked": self.anchor_checked,
                "breaks": [b.to_dict() for b in self.breaks], "more_breaks": self.more_breaks}


class ChainChecker:
    """Feed events of any number of streams, each stream in its stored order."""

    def __init__(self, report: VerifyReport, anchor: dict[str, tuple[int, str]] | None = None):
        self.report = report
        self.anchor = anchor or {}

    def feed(self, ev: StoredEvent) -> None:
        self.feed_rows([(ev.position, ev.stream_id, ev.version, ev.event_type,
                         ev.schema_version, ev.payload, ev.actor_id, ev.actor_role,
                         ev.occurred_at, ev.command_id, ev.correlation_id, ev.causation_id,
                         ev.hash)])

    def feed_rows(self, rows: Iterable[tuple[Any, ...]],
                  firsts: dict[str, tuple[int, int, bytes, str]] | None = None) -> None:
        """Check raw rows (``StoredEvent``'s fields in order, see ``EventStore.read_rows``).

        With ``firsts`` (a stretch of a log split between processes), the first event of
        each stream is not checked but kept there, with what its hash covers after the
        previous hash, for ``check`` by whoever knows the stream's events before it."""
        report = self.report
        heads = report.heads
        anchor = self.anchor
        sha256 = hashlib.sha256
        count = 0
        last_fields: tuple[str, ...] = ()
        shared = b""
        for (position, stream_id, version, event_type, schema_version, payload, actor_id,
             actor_role, occurred_at, command_id, correlation_id, causation_id,
             stored) in rows:
            count += 1
            if type(payload) is str:
                payload = payload.encode("utf-8")
            fields = (actor_id, actor_role, occurred_at, command_id, correlation_id,
                      causation_id)
            if fields != last_fields:  # a command's events lie together: encoded once
                shared, last_fields = shared_fields(*fields), fields
            tail = tail_with(stream_id, version, event_type, schema_version, shared, payload)
            head = heads.get(stream_id)
            if head is None:
                if firsts is not None:
                    firsts[stream_id] = (position, version, tail, stored)
                    heads[stream_id] = (version, stored)
                    continue
                head = (0, GENESIS)
            if (version == head[0] + 1
                    and sha256(previous_field(head[1]) + tail).hexdigest() == stored
                    and (not anchor or stream_id not in anchor)):
                heads[stream_id] = (version, stored)  # the common case, checked inline
            else:
                self.check(position, stream_id, version, tail, stored, head, report.add)
        report.events += count

    def check(self, position: int, stream_id: str, version: int, tail: bytes, stored: str,
              head: tuple[int, str], add: Callable[[Break], None]) -> None:
        """Check one event against the stored head of its stream before it; ``add`` each
        break found. The stream's head becomes this event as stored, so each alteration is
        reported once, where it is."""
        last_version, last_hash = head
        if version != last_version + 1:
            what = ("an event is missing before it" if version > last_version + 1
                    else "it repeats or comes out of order")
            add(Break(stream_id, version,
                      f"version {version} follows version {last_version}: {what}",
                      expected=f"version {last_version + 1}", found=f"version {version}",
                      position=position))
        expected = hashlib.sha256(previous_field(last_hash) + tail).hexdigest()
        if expected != stored and version == last_version + 1:
            add(Break(stream_id, version,
                      "hash mismatch: the event or the one before it was altered",
                      expected=expected, found=stored, position=position))
        anchored = self.anchor.get(stream_id)
        if anchored is not None and anchored[0] == version and anchored[1] != stored:
            add(Break(stream_id, version,
                      "differs from the recorded anchor: the stream was rewritten",
                      expected=anchored[1], found=stored, position=position))
        self.report.heads[stream_id] = (version, stored)

    def merge(self, part: VerifyReport, firsts: dict[str, tuple[int, int, bytes, str]]) -> None:
        """Take in the next stretch of the log, checked elsewhere: its streams' first events
        are checked here against the heads so far, then every break is listed in log order,
        as if this checker had read the stretch itself."""
        found: list[Break] = []
        for stream_id, (position, version, tail, stored) in firsts.items():
            head = self.report.heads.get(stream_id, (0, GENESIS))
            self.check(position, stream_id, version, tail, stored, head, found.append)
        report = self.report
        for brk in sorted(found + part.breaks, key=lambda b: b.position or 0):
            report.add(brk)
        report.more_breaks += part.more_breaks
        report.events += part.events
        report.heads.update(part.heads)

    def finish(self, recorded_tails: dict[str, int] | None = None) -> VerifyReport:
        report = self.report
        for stream_id, last in sorted((recorded_tails or {}).items()):
            have = report.heads.get(stream_id, (0, GENESIS))[0]
            if have < last:
                report.add(Break(stream_id, have + 1,
                                 f"the log ends at version {have} but commands recorded events "
                                 f"up to version {last}: the tail was deleted",
                                 expected=f"version {last}", found=f"version {have}"))
        for stream_id, (version, digest) in sorted(self.anchor.items()):
            have = report.heads.get(stream_id, (0, GENESIS))[0]
            if have < version:
                report.add(Break(stream_id, version,
                                 f"the anchor records version {version} but the log ends at "
                                 f"version {have}: the tail was deleted",
                                 expected=digest, found=""))
        report.anchor_checked = bool(self.anchor)
        report.breaks.sort(key=lambda b: (b.position is None, b.position or 0))
        return report


def _scope(stream_id: str | None, programme: str | None) -> tuple[str | None, list[str]]:
    """(single stream or None, stream-id prefixes) for the options given."""
    if stream_id and programme:
        raise ValidationError(FieldError("plan", "give a plan or a programme, not both"))
    if stream_id:
        return stream_id, []
    if programme:
        return None, [programme_stream(programme), f"plan:{programme}:"]
    return None, []


UNRECORDED_LISTED = MAX_REPORTED * 10  # events no command covers, listed at most


def _unrecorded(store: EventStore, stream_id: str | None, prefix: str | None, after: int,
                upto: int) -> list[Break]:
    """Events at ``after < position <= upto`` (of one stream, of the streams starting with
    ``prefix``, or of all) that no recorded command covers: written behind the engine's
    back. The database does the join; nothing here grows with the log."""
    cmd = commands
    query = (
        select(events.c.stream_id, events.c.version, events.c.position, events.c.command_id,
               cmd.c.stream_id, cmd.c.first_version, cmd.c.last_version)
        .select_from(events.outerjoin(cmd, cmd.c.command_id == events.c.command_id))
        .where(or_(cmd.c.command_id.is_(None), cmd.c.stream_id != events.c.stream_id,
                   events.c.version < cmd.c.first_version,
                   events.c.version > cmd.c.last_version))
        .where(events.c.position > after, events.c.position <= upto)
        .order_by(events.c.position)
        .limit(UNRECORDED_LISTED)
    )
    if stream_id is not None:
        query = query.where(events.c.stream_id == stream_id)
    elif prefix:
        query = query.where(events.c.stream_id.startswith(prefix, autoescape=True))
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Break(s_id, version, f"no command {command_id!r} recorded this event: it was "
              "written behind the engine's back", position=position)
        if c_stream is None else
        Break(s_id, version, f"command {command_id!r} recorded {c_stream} versions "
              f"{first}-{last}, not this event: it was moved or inserted", position=position)
        for s_id, version, position, command_id, c_stream, first, last in rows]


def _recorded_tails(store: EventStore, stream_id: str | None,
                    prefixes: list[str]) -> dict[str, int]:
    query = select(commands.c.stream_id, func.max(commands.c.last_version)).group_by(
        commands.c.stream_id)
    if stream_id is not None:
        query = query.where(commands.c.stream_id == stream_id)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    if prefixes:
        rows = [r for r in rows if any(r[0] == p or (p.endswith(":") and r[0].startswith(p))
                                       for p in prefixes)]
    return {r[0]: int(r[1]) for r in rows}


# A log is split between processes from this many events on: forked ones start in
# milliseconds; spawned ones (when this process runs other threads, which fork() would not
# copy) import the engine first, about a second.
PARALLEL_FROM = {"fork": 50_000, "spawn": 500_000}


def verify_store(store: EventStore, *, stream_id: str | None = None,
                 programme: str | None = None, anchor: dict[str, Any] | None = None,
                 progress: Progress | None = None, page_size: int = 5000,
                 workers: int | None = None) -> VerifyReport:
    """Recompute every hash chain in the store (or one plan's, or one programme's).

    A long log is split by position between ``workers`` processes (default: the CPUs this
    process may use), forked from this one when it runs no other thread: each checks its
    stretch, and the first event of each stream in a stretch is checked here against the
    stretch before. The report is the same as one process reading the log in order."""
    single, prefixes = _scope(stream_id, programme)
    anchored = _anchor_heads(anchor) if anchor is not None else None
    if anchored is not None and (single or prefixes):
        anchored = {s: h for s, h in anchored.items()
                    if s == single or any(s == p or (p.endswith(":") and s.startswith(p))
                                          for p in prefixes)}
    # Read before the log: every command recorded by now has its events in the log by now
    # (one transaction), so a command appended while verifying cannot look like a deletion.
    tails = _recorded_tails(store, single, prefixes)
    after, upto = store.position_bounds()
    checker = ChainChecker(VerifyReport(), anchored)
    unrecorded: list[Break] = []
    for prefix in (prefixes or [None]):
        exact = prefix is not None and not prefix.endswith(":")  # a programme's own stream
        one = prefix if exact else single
        like = None if exact else prefix
        stretches = ([(after, upto)] if one is not None
                     else _stretches(store, after, upto, workers))
        if len(stretches) > 1:
            unrecorded += _verify_in_processes(store, checker, stretches, like, page_size,
                                               progress)
            continue
        for page in store.read_rows(after, upto, page_size=page_size, stream_id=one,
                                    prefix=like):
            checker.feed_rows(page)
            if progress is not None:
                progress(len(page))
        unrecorded += _unrecorded(store, one, like, after, upto)
    report = checker.report
    for brk in sorted(unrecorded, key=lambda b: b.position or 0)[:UNRECORDED_LISTED]:
        report.add(brk)
    return checker.finish(tails)


def _start_method() -> str:
    """fork() copies only the calling thread: with others running, a lock one of them held
    would stay taken in the child, so such a process spawns its workers instead."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return "fork"
    return "spawn"


def _stretches(store: EventStore, after: int, upto: int,
               workers: int | None) -> list[tuple[int, int]]:
    """Position ranges ``(after, upto]``, one per process (one range: this process alone)."""
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    in_memory = ":memory:" in store.url or store.url.rstrip("/").endswith("sqlite:")
    if workers < 2 or in_memory or upto - after < PARALLEL_FROM[_start_method()]:
        return [(after, upto)]
    step = -(-(upto - after) // workers)
    return [(low, min(upto, low + step)) for low in range(after, upto, step)]


_FORKED_STORE: EventStore | None = None  # the store a forked worker reads through


def _verify_in_processes(store: EventStore, checker: ChainChecker,
                         stretches: list[tuple[int, int]], prefix: str | None, page_size: int,
                         progress: Progress | None) -> list[Break]:
    """This process checks the first stretch while the others check theirs; returns the
    events no command covers, found stretch by stretch."""
    global _FORKED_STORE
    method = _start_method()
    # A forked worker reads through this store (its pool forgets the parent's connections);
    # a spawned one opens the database again.
    url = None if method == "fork" else store.engine.url.render_as_string(hide_password=False)
    _FORKED_STORE = store
    try:
        with ProcessPoolExecutor(len(stretches) - 1,
                                 mp_context=multiprocessing.get_context(method)) as pool:
            parts = [pool.submit(_verify_stretch, url, low, high, prefix, checker.anchor,
                                 page_size) for low, high in stretches[1:]]
            low, high = stretches[0]
            for page in store.read_rows(low, high, page_size=page_size, prefix=prefix):
                checker.feed_rows(page)
                if progress is not None:
                    progress(len(page))
            unrecorded = _unrecorded(store, None, prefix, low, high)
            for future in parts:
                part, firsts, more = future.result()
                checker.merge(part, firsts)
                unrecorded += more
                if progress is not None:
                    progress(part.events)
    finally:
        _FORKED_STORE = None
    checker.report.processes = max(checker.report.processes, len(stretches))
    return unrecorded


def _verify_stretch(url: str | None, after: int, upto: int, prefix: str | None,
                    anchor: dict[str, tuple[int, str]], page_size: int,
                    ) -> tuple[VerifyReport, dict[str, tuple[int, int, bytes, str]], list[Break]]:
    """In a worker: check the events at ``after < position <= upto``."""
    if url is None:
        store = _FORKED_STORE
        assert store is not None, "a forked worker of _verify_in_processes"
        store.engine.dispose(close=False)  # the parent's pooled connections stay the parent's
    else:
        store = EventStore(url, auto_migrate=False)
    # Every break is kept (one per stream): the parent lists them in log order among those
    # its own checks of this stretch's first events find, then applies its limit.
    checker = ChainChecker(VerifyReport(limit=sys.maxsize), anchor)
    firsts: dict[str, tuple[int, int, bytes, str]] = {}
    try:
        for page in store.read_rows(after, upto, page_size=page_size, prefix=prefix):
            checker.feed_rows(page, firsts)
        unrecorded = _unrecorded(store, None, prefix, after, upto)
    finally:
        if url is not None:
            store.close()
    return checker.report, firsts, unrecorded


# ---------------------------------------------------------------------------- anchors
def make_anchor(store: EventStore, programme: str | None = None) -> dict[str, Any]:
    """The head (version, hash) of every stream and one combined hash over them all."""
    if programme:
        heads = {**store.heads(programme_stream(programme)), **store.heads(f"plan:{programme}:")}
    else:
        heads = store.heads()
    return {
        "format": ANCHOR_FORMAT,
        "created_at": format_time(datetime.now(UTC)),
        "scope": {"programme": programme} if programme else {"all": True},
        "streams": {s: {"version": v, "hash": h} for s, (v, h) in sorted(heads.items())},
        "combined": combine_heads({s: h for s, (_, h) in heads.items()}),
    }


def _anchor_heads(anchor: dict[str, Any]) -> dict[str, tuple[int, str]]:
    try:
        if anchor.get("format") != ANCHOR_FORMAT:
            raise ValueError(f"format is {anchor.get('format')!r}, not {ANCHOR_FORMAT!r}")
        heads = {s: (int(h["version"]), str(h["hash"])) for s, h in anchor["streams"].items()}
        if combine_heads({s: h for s, (_, h) in heads.items()}) != anchor["combined"]:
            raise ValueError("its combined hash does not match its streams: the anchor itself "
                             "was altered")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValidationError(FieldError("anchor", f"not a valid anchor: {exc}")) from None
    return heads


def load_json_file(path: Path, name: str) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ValidationError(FieldError(name, f"cannot read {path}: {exc.strerror}")) from None
    except orjson.JSONDecodeError as exc:
        raise ValidationError(FieldError(name, f"{path} is not JSON: {exc}")) from None


# ---------------------------------------------------------------------------- replay
def stream_events(store: EventStore, stream_id: str) -> list[StoredEvent]:
    stored = store.read_stream(stream_id)
    if not stored:
        raise NotFound(f"no plan {stream_id.removeprefix('plan:')!r}")
    return stored


def version_at(stored: list[StoredEvent], point: int | datetime | None) -> int:
    """The stream version a ``--version N`` or ``--at TIME`` point names."""
    if point is None:
        return stored[-1].version if stored else 0
    if isinstance(point, int):
        if point < 0:
            raise ValidationError(FieldError("version", "must be 0 or more"))
        return min(point, stored[-1].version if stored else 0)
    stamp = format_time(point)  # fixed-width text sorts as time does
    version = 0
    for ev in stored:
        if ev.occurred_at > stamp:
            break
        version = ev.version
    return version


def replay(stored: Iterable[StoredEvent], version: int | None = None) -> P.PlanState | None:
    """Fold stored events up to ``version`` through the same ``evolve`` as live code."""
    upto = [ev for ev in stored if version is None or ev.version <= version]
    if not upto:
        return None
    return P.fold_data(((ev.event_type, event_data(ev.event_type, ev.schema_version, ev.payload))
                        for ev in upto), version=upto[-1].version)


def replay_plan(store: EventStore, stream_id: str, *, version: int | None = None,
                at: datetime | None = None) -> P.PlanState:
    if version is not None and at is not None:
        raise ValidationError(FieldError("at", "give --at or --version, not both"))
    stored = stream_events(store, stream_id)
    upto = version_at(stored, version if version is not None else at)
    state = replay(stored, upto)
    if state is None:
        first = stored[0].occurred_at
        raise NotFound(f"plan {stream_id.removeprefix('plan:')!r} did not exist yet at that point "
                       f"(its first event is at {first})")
    return state


# ---------------------------------------------------------------------------- diff
def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1]}}`` -> ``{"a.b[0]": 1}``; leaves and empty containers kept."""
    out: dict[str, Any] = {}
    if isinstance(value, dict) and value:
        for k, v in value.items():
            out.update(flatten(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(value, list | tuple) and value:
        for i, v in enumerate(value):
            out.update(flatten(v, f"{path}[{i}]"))
    else:
        out[path] = list(value) if isinstance(value, tuple) else value
    return out


def _state_fields(state: P.PlanState | None) -> dict[str, Any]:
    if state is None:
        return {}
    data = state.to_dict()
    data.pop("version", None)
    return flatten(data)


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    before: Any
    after: Any
    version: int
    event_type: str
    actor_id: str
    actor_role: str
    occurred_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.path, "before": self.before, "after": self.after,
                "version": self.version, "event_type": self.event_type, "actor": self.actor_id,
                "role": self.actor_role, "at": self.occurred_at}


_MISSING = object()


def _blank(value: Any) -> bool:
    return value is _MISSING or value is None or value == [] or value == {}


def diff(stored: list[StoredEvent], start: int, end: int) -> list[Change]:
    """Field-by-field changes from version ``start`` to ``end``, each with the event
    (who, when) that last set the field."""
    if start > end:
        raise ValidationError(FieldError("from", f"version {start} comes after {end}",
                                         fix="swap --from and --to"))
    state = replay(stored, start) if start > 0 else None
    before = _state_fields(state)
    current = dict(before)
    touched: dict[str, StoredEvent] = {}
    for ev in stored:
        if ev.version <= start:
            continue
        if ev.version > end:
            break
        state = P.evolve_data(state, ev.event_type,
                              event_data(ev.event_type, ev.schema_version, ev.payload))
        now = _state_fields(state)
        for path in now.keys() | current.keys():
            if now.get(path, _MISSING) != current.get(path, _MISSING):
                touched[path] = ev
        current = now
    changes = []
    for path in sorted(touched):
        old, new = before.get(path, _MISSING), current.get(path, _MISSING)
        if old == new or (_blank(old) and _blank(new)):
            continue  # changed and changed back, or a None that became a dict (its fields show)
        ev = touched[path]
        changes.append(Change(path, None if old is _MISSING else old,
                              None if new is _MISSING else new, ev.version, ev.event_type,
                              ev.actor_id, ev.actor_role, ev.occurred_at))
    return changes


# ---------------------------------------------------------------------------- timeline
def short_stage(stage: str) -> str:
    """``bimtek_2`` -> ``Bimtek II``; ``review`` -> ``Reviu / review``."""
    return P.STAGE_LABELS.get(stage, stage).split(" - ")[0]


_stage = short_stage


_DESCRIBE: dict[str, Callable[[dict[str, Any]], str]] = {
    "PlanEnrolled": lambda d: f"{d['region_name']} enrolled in {d['programme_id']} "
                              f"({len(d['pillars'])} pillars)",
    "StageStarted": lambda d: f"{_stage(d['stage'])} "
                              f"{'reopened for revision' if d.get('revision') else 'opened'}",
    "FormSubmitted": lambda d: f"{d['pillar']} form {d['form']} submitted for {_stage(d['stage'])}",
    "StageCompleted": lambda d: f"{_stage(d['stage'])} completed",
    "QuickWinProposed": lambda d: f"quick win {d['quick_win_id']} proposed: {d['name']} "
                                  f"({d['pillar']}, {d['agency']})",
    "QuickWinRiskRecorded": lambda d: f"risk {d['risk_id']} on {d['quick_win_id']}: "
                                      f"likelihood {d['likelihood']} x impact {d['impact']}",
    "QuickWinProgressReported": lambda d: f"quick win {d['quick_win_id']} at "
                                          f"{d['completion_percent']}%"
                                          + (f" ({d['reason']})" if d.get("reason") else ""),
    "SubmittedForReview": lambda d: f"submitted for review (round {d['round']})",
    "ReviewFindingRecorded": lambda d: f"{d['severity']} finding {d['finding_id']} on "
                                       f"{d.get('pillar') or 'the plan'}: {d['text']}",
    "ReviewPassed": lambda d: f"review round {d['round']} passed by {d['reviewer']}",
    "ReturnedForRevision": lambda d: f"returned for revision by {d['reviewer']}: {d['reason']}",
    "ApprovedByRegent": lambda d: f"approved by the {d['head_title']} ({d['regent']})"
                                  + (f", {d['regulation_number']}"
                                     if d.get("regulation_number") else ""),
    "ApprovalRefused": lambda d: f"approval refused by {d['regent']}: {d['reason']}",
    "BimtekSessionRecorded": lambda d: f"{_stage(d['stage'])} session on {d['held_on']} at "
                                       f"{d['venue']} ({len(d['agencies'])} agencies, "
                                       f"{len(d.get('institutions') or [])} institutions)",
    "QuickWinPresented": lambda d: f"quick win {d['quick_win_id']} presented by "
                                   f"{d['agency']} ({d['presenter']})",
    "QuickWinAdviceRecorded": lambda d: f"advice {d['advice_id']} on {d['quick_win_id']} by "
                                        f"{d['advisor']}: {d['text']}",
    "EvaluationSubmitted": lambda d: f"{d['year']} evaluation submitted: "
                                     f"{len(d['quick_wins'])} quick wins, "
                                     f"{len(d['indicators'])} indicators",
    "EvaluationScored": lambda d: f"{d['year']} evaluation scored by {d['reviewer']}: "
                                  + ", ".join(f"{p} {v}" for p, v in d["scores"].items()),
}


def describe(event_type: str, data: dict[str, Any]) -> str:
    """A one-line description of an event for people."""
    fn = _DESCRIBE.get(event_type)
    if fn is None:
        return event_type
    try:
        return _one_line(fn(data))
    except (KeyError, TypeError):
        return event_type


def _one_line(text: str, width: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    version: int
    occurred_at: str
    actor_id: str
    actor_role: str
    event_type: str
    stage: str
    description: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "at": self.occurred_at, "actor": self.actor_id,
                "role": self.actor_role, "event_type": self.event_type, "stage": self.stage,
                "description": self.description, "hash": self.hash}


def timeline(stored: list[StoredEvent], *, actor: str | None = None, role: str | None = None,
             event_types: Iterable[str] = (), since: datetime | None = None,
             until: datetime | None = None) -> list[TimelineEntry]:
    """Every event (filtered) with who, role, the plan's stage after it, when, and what."""
    wanted = {t.strip() for t in event_types if t.strip()}
    known = set(registered_events())
    unknown = wanted - known
    if unknown:
        raise ValidationError(FieldError("type", f"unknown event type {sorted(unknown)[0]!r}",
                                         fix="one of " + ", ".join(sorted(known))))
    low = format_time(since) if since else None
    high = format_time(until) if until else None
    state: P.PlanState | None = None
    out = []
    for ev in stored:
        data = event_data(ev.event_type, ev.schema_version, ev.payload)
        state = P.evolve_data(state, ev.event_type, data)
        if actor and ev.actor_id != actor:
            continue
        if role and ev.actor_role != role:
            continue
        if wanted and ev.event_type not in wanted:
            continue
        if (low and ev.occurred_at < low) or (high and ev.occurred_at > high):
            continue
        out.append(TimelineEntry(ev.version, ev.occurred_at, ev.actor_id, ev.actor_role,
                                 ev.event_type, state.stage,
                                 describe(ev.event_type, data), ev.hash))
    return out


# ---------------------------------------------------------------------------- export
def _export_streams(store: EventStore, stream_id: str | None,
                    programme: str | None) -> Iterator[StoredEvent]:
    single, prefixes = _scope(stream_id, programme)
    if single is None and not prefixes:
        raise ValidationError(FieldError("plan", "export one plan or one programme",
                                         fix="give PLAN or --programme"))
    if single is not None:
        yield from stream_events(store, single)
        return
    for prefix in prefixes:
        if prefix.endswith(":"):
            yield from store.read_all(stream_prefix=prefix)
        else:
            stored = store.read_stream(prefix)
            if not stored:
                raise NotFound(f"no programme {programme!r}")
            yield from stored


def _row(ev: StoredEvent) -> dict[str, Any]:
    return {"position": ev.position, "stream_id": ev.stream_id, "version": ev.version,
            "event_type": ev.event_type, "schema_version": ev.schema_version,
            "actor_id": ev.actor_id, "actor_role": ev.actor_role,
            "occurred_at": ev.occurred_at, "command_id": ev.command_id,
            "correlation_id": ev.correlation_id, "causation_id": ev.causation_id,
            "payload": ev.payload.decode("utf-8"), "hash": ev.hash}


def export(store: EventStore, out: IO[str], fmt: str, *, stream_id: str | None = None,
           programme: str | None = None) -> dict[str, Any]:
    """Write a self-contained audit package; returns its manifest.

    The first line is the manifest (JSON; in CSV prefixed by ``#``): format, scope, event
    count, each stream's head and the combined head hash. Every further line or row is
    one event with every hashed field, the payload exactly as hashed, and its hash.
    """
    if fmt not in ("jsonl", "csv"):
        raise ValidationError(FieldError("format", f"{fmt!r} is not jsonl or csv"))
    # Two passes: the manifest (heads, count) comes first, so an outside verifier reads it
    # before the events; both passes read the same committed, append-only history.
    heads: dict[str, tuple[int, str]] = {}
    count = 0
    limit = 0
    for ev in _export_streams(store, stream_id, programme):
        heads[ev.stream_id] = (ev.version, ev.hash)
        count += 1
        limit = max(limit, ev.position)
    manifest = {
        "format": EXPORT_FORMAT, "format_version": EXPORT_VERSION,
        "hash": "sha256 over 8-byte big-endian length-prefixed UTF-8 fields; see docs/audit.md",
        "hashed_fields": ["previous hash", *EXPORT_FIELDS[1:-1]],
        "scope": {"plan": stream_id} if stream_id else {"programme": programme},
        "exported_at": format_time(datetime.now(UTC)),
        "events": count,
        "streams": {s: {"version": v, "hash": h} for s, (v, h) in sorted(heads.items())},
        "combined": combine_heads({s: h for s, (_, h) in heads.items()}),
    }
    writer = None
    if fmt == "jsonl":
        out.write(orjson.dumps(manifest).decode() + "\n")
    else:
        out.write("#" + orjson.dumps(manifest).decode() + "\n")
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
    for ev in _export_streams(store, stream_id, programme):
        if ev.position > limit:
            continue  # appended after the manifest was made
        if writer is None:
            out.write(orjson.dumps(_row(ev)).decode() + "\n")
        else:
            writer.writerow(_row(ev))
    return manifest


def _read_export(lines: Iterator[str], name: str) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    first = next(lines, "")
    is_csv = first.startswith("#")
    try:
        manifest = orjson.loads(first[1:] if is_csv else first)
        if manifest.get("format") != EXPORT_FORMAT:
            raise ValueError("not a smartcity audit export")
        if manifest.get("format_version") != EXPORT_VERSION:
            raise ValueError(f"format version {manifest.get('format_version')} is not "
                             f"{EXPORT_VERSION}")
    except (orjson.JSONDecodeError, ValueError, AttributeError) as exc:
        raise ValidationError(FieldError(name, f"the first line is not an export manifest: "
                                               f"{exc}")) from None
    if is_csv:
        rows: Iterator[dict[str, Any]] = csv.DictReader(lines)
    else:
        rows = (orjson.loads(line) for line in lines if line.strip())
    return manifest, rows


def verify_export(path: Path, progress: Progress | None = None) -> VerifyReport:
    """Check an export package alone, without the database."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ValidationError(FieldError("file", f"cannot read {path}: {exc.strerror}")) from None
    with handle:
        manifest, rows = _read_export(iter(handle), "file")
        try:
            heads = {s: (int(h["version"]), str(h["hash"]))
                     for s, h in manifest["streams"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValidationError(FieldError("file", "the manifest has no valid streams")) from None
        checker = ChainChecker(VerifyReport())
        report = checker.report
        for n, row in enumerate(rows, start=1):
            try:
                ev = StoredEvent(int(row["position"]), row["stream_id"], int(row["version"]),
                                 row["event_type"], int(row["schema_version"]),
                                 row["payload"].encode("utf-8"), row["actor_id"],
                                 row["actor_role"], row["occurred_at"], row["command_id"],
                                 row["correlation_id"], row["causation_id"], row["hash"])
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                report.add(Break("?", 0, f"event {n} of the file is malformed: {exc}"))
                continue
            checker.feed(ev)
            if progress is not None and n % 5000 == 0:
                progress(5000)
    checker.finish()
    for stream_id, (version, digest) in sorted(heads.items()):
        have = report.heads.get(stream_id)
        if have is None or have[0] != version or have[1] != digest:
            report.add(Break(stream_id, version,
                             "the manifest's head differs from the events in the file: events "
                             "were removed or added", expected=digest,
                             found=have[1] if have else ""))
    for stream_id in sorted(report.heads.keys() - heads.keys()):
        report.add(Break(stream_id, report.heads[stream_id][0],
                         "a stream in the file is missing from the manifest"))
    if manifest.get("events") != report.events:
        report.add(Break("*", 0, "the manifest's event count differs from the file",
                         expected=str(manifest.get("events")), found=str(report.events)))
    if combine_heads({s: h for s, (_, h) in heads.items()}) != manifest.get("combined"):
        report.add(Break("*", 0, "the manifest's combined hash does not match its streams",
                         expected=combine_heads({s: h for s, (_, h) in heads.items()}),
                         found=str(manifest.get("combined"))))
    return report


__all__ = ["Break", "Change", "ChainChecker", "TimelineEntry", "VerifyReport", "describe",
           "diff", "export", "flatten", "make_anchor", "parse_moment", "parse_plan_id",
           "parse_point", "replay", "replay_plan", "timeline", "verify_export", "verify_store",
           "version_at"]
