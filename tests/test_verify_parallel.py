"""``verify_store`` splits a long log by position between processes. Whatever was done to
the log, the report must be exactly the one a single process reading it in order gives:
the same breaks, listed in the same order, the same counts and heads."""

from __future__ import annotations

import multiprocessing as mp
import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from sqlalchemy import text

from engine import audit
from engine.chain import canonical_json
from engine.records import EventMeta, NewEvent
from engine.store.eventstore import EventStore

STREAMS = 7
EVENTS_PER_STREAM = 30
TOTAL = STREAMS * EVENTS_PER_STREAM


def build(url: str, seed: int = 3) -> EventStore:
    """Seven plans' streams, interleaved in commands of one to three events, so every
    stream crosses every boundary between the processes' stretches."""
    store = EventStore(url)
    rng = random.Random(seed)
    versions = {f"plan:p:{s:02d}": 0 for s in range(STREAMS)}
    while open_streams := [s for s, v in versions.items() if v < EVENTS_PER_STREAM]:
        stream = rng.choice(open_streams)
        n = min(rng.randint(1, 3), EVENTS_PER_STREAM - versions[stream])
        batch = [NewEvent("FormSubmitted", 1, canonical_json(
            {"stream": stream, "n": versions[stream] + i, "text": "x" * rng.randint(0, 40)}))
            for i in range(1, n + 1)]
        command = str(uuid.uuid4())
        store.append(stream, versions[stream], batch,
                     EventMeta("officer", "regional_officer", command, command))
        versions[stream] += n
    return store


def tamper(store: EventStore, *statements: str) -> None:
    """Run SQL behind the engine's back (the append-only triggers switched off)."""
    with store.engine.begin() as conn:
        for table in ("events", "commands"):
            if store.is_postgres:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            else:
                for action in ("update", "delete"):
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{action}"))
        for statement in statements:
            conn.execute(text(statement))


def _both(url: str, workers: int, anchor: dict[str, Any] | None,
          limit: int) -> tuple[dict[str, Any], dict[str, Any], int, str]:
    """In a fresh single-threaded process (so workers are forked, as from the CLI): the
    report of one process and of ``workers`` processes."""
    audit.PARALLEL_FROM = {"fork": 0, "spawn": 0}
    audit.MAX_REPORTED = limit
    store = EventStore(url, auto_migrate=False)
    try:
        alone = audit.verify_store(store, anchor=anchor, workers=1)
        split = audit.verify_store(store, anchor=anchor, workers=workers)
    finally:
        store.close()
    assert alone.processes == 1
    return alone.to_dict(), split.to_dict(), split.processes, audit._start_method()


@pytest.fixture(scope="module")
def helper() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        yield pool


def both(helper: ProcessPoolExecutor, store: EventStore, workers: int,
         anchor: dict[str, Any] | None = None,
         limit: int = audit.MAX_REPORTED) -> tuple[dict[str, Any], dict[str, Any]]:
    url = store.engine.url.render_as_string(hide_password=False)
    alone, split, processes, method = helper.submit(_both, url, workers, anchor,
                                                    limit).result(timeout=120)
    assert processes == workers and method == "fork"
    assert split == alone
    return alone, split


def position_of(store: EventStore, stream: str, version: int) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT position FROM events WHERE stream_id = :s "
                                     "AND version = :v"), {"s": stream, "v": version}).scalar())


def first_positions_of_stretches(workers: int) -> list[int]:
    step = -(-TOTAL // workers)
    return [1 + k * step for k in range(workers)]


@pytest.mark.parametrize("workers", [2, 3, 5])
def test_clean_log(helper: ProcessPoolExecutor, db_url: str, workers: int) -> None:
    store = build(db_url)
    alone, _ = both(helper, store, workers)
    assert alone["ok"] and alone["events"] == TOTAL and alone["streams"] == STREAMS


@pytest.mark.parametrize("workers", [2, 3])
def test_altered_events_at_the_stretch_boundaries(helper: ProcessPoolExecutor, db_url: str,
                                                  workers: int) -> None:
    """The first event of a stretch (checked by the parent against the stretch before),
    the last one of a stretch, and one in the middle."""
    store = build(db_url)
    firsts = first_positions_of_stretches(workers)
    positions = sorted({*firsts[1:], *(p - 1 for p in firsts[1:]), TOTAL // 2 + 3})
    tamper(store, *(f"UPDATE events SET payload = payload || ' ' WHERE position = {p}"
                    for p in positions))
    alone, _ = both(helper, store, workers)
    assert not alone["ok"]
    assert {b["position"] for b in alone["breaks"]} <= set(positions)


def test_every_event_altered_lists_one_break_per_stream(helper: ProcessPoolExecutor,
                                                        db_url: str) -> None:
    store = build(db_url)
    tamper(store, "UPDATE events SET actor_id = 'someone else'")
    alone, _ = both(helper, store, 3)
    assert len(alone["breaks"]) == STREAMS
    assert alone["more_breaks"] == TOTAL - STREAMS
    assert [b["position"] for b in alone["breaks"]] == sorted(
        b["position"] for b in alone["breaks"])


def test_the_listing_limit_applies_as_in_one_process(helper: ProcessPoolExecutor,
                                                     db_url: str) -> None:
    """Three breaks listed at most: which three, and how many more, do not depend on how
    the log was split."""
    store = build(db_url)
    tamper(store, "UPDATE events SET payload = payload || ' ' WHERE version = 2",
           "UPDATE events SET payload = payload || ' ' WHERE version = 20")
    alone, _ = both(helper, store, 3, limit=3)
    assert len(alone["breaks"]) == 3 and alone["more_breaks"] == 2 * STREAMS - 3


def test_breaks_are_listed_in_log_order_across_the_split(helper: ProcessPoolExecutor,
                                                         db_url: str) -> None:
    """In the second of three stretches, an event that is not its stream's first there
    (checked by the worker) comes before one that is (checked by the parent): with room
    for one break, the earlier one is listed, as in one process."""
    store = build(db_url)
    step = -(-TOTAL // 3)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT position, stream_id FROM events WHERE position > :a "
                                 "AND position <= :b ORDER BY position"),
                            {"a": step, "b": 2 * step}).all()
    seen: set[str] = set()
    boundary, inner = [], []
    for position, stream in rows:
        (inner if stream in seen else boundary).append(position)
        seen.add(stream)
    last_boundary = max(boundary)
    earlier = min(p for p in inner if p < last_boundary)
    tamper(store, *(f"UPDATE events SET payload = payload || ' ' WHERE position = {p}"
                    for p in (earlier, last_boundary)))
    alone, _ = both(helper, store, 3, limit=1)
    assert [b["position"] for b in alone["breaks"]] == [earlier]
    assert alone["more_breaks"] == 1


@pytest.mark.parametrize("case", ["deleted", "swapped", "renumbered", "garbled hash",
                                  "inserted", "truncated"])
def test_structural_tampering(helper: ProcessPoolExecutor, db_url: str, case: str) -> None:
    store = build(db_url)
    stream = "plan:p:03"
    middle = position_of(store, stream, 15)
    statements = {
        "deleted": [f"DELETE FROM events WHERE position = {middle}"],
        "swapped": [f"UPDATE events SET version = -1 WHERE stream_id = '{stream}' "
                    "AND version = 15",
                    f"UPDATE events SET version = 15 WHERE stream_id = '{stream}' "
                    "AND version = 16",
                    f"UPDATE events SET version = 16 WHERE stream_id = '{stream}' "
                    "AND version = -1"],
        "renumbered": [f"UPDATE events SET version = version + 100 WHERE stream_id = "
                       f"'{stream}' AND version > 10"],
        "garbled hash": [f"UPDATE events SET hash = 'not a hash' WHERE position = {middle}"],
        "inserted": [f"INSERT INTO events (stream_id, version, event_type, schema_version, "
                     f"payload, actor_id, actor_role, occurred_at, command_id, "
                     f"correlation_id, causation_id, hash) SELECT stream_id, 31, event_type, "
                     f"schema_version, payload, actor_id, actor_role, occurred_at, 'forged', "
                     f"correlation_id, causation_id, hash FROM events WHERE position = "
                     f"{middle}"],
        "truncated": [f"DELETE FROM events WHERE stream_id = '{stream}' AND version > 20"],
    }[case]
    tamper(store, *statements)
    alone, _ = both(helper, store, 3)
    assert not alone["ok"]


def test_a_rewritten_tail_is_caught_by_the_anchor(helper: ProcessPoolExecutor,
                                                  db_url: str) -> None:
    store = build(db_url)
    anchor = audit.make_anchor(store)
    stream = "plan:p:05"
    tamper(store, f"DELETE FROM events WHERE stream_id = '{stream}' AND version > 25",
           f"UPDATE commands SET last_version = 25 WHERE stream_id = '{stream}' "
           "AND last_version > 25")
    alone, _ = both(helper, store, 2, anchor=anchor)
    assert not alone["ok"] and alone["anchor_checked"]
    assert any("anchor" in b["reason"] for b in alone["breaks"])


def test_spawned_workers_when_other_threads_run(db_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A process running other threads (a web server, Prefect) spawns its workers."""
    store = build(db_url)
    tamper(store, "UPDATE events SET payload = payload || ' ' WHERE position = 150")
    monkeypatch.setattr(audit, "PARALLEL_FROM", {"fork": 0, "spawn": 0})
    monkeypatch.setattr(audit, "_start_method", lambda: "spawn")
    alone = audit.verify_store(store, workers=1)
    split = audit.verify_store(store, workers=2)
    assert split.processes == 2 and alone.processes == 1
    assert split.to_dict() == alone.to_dict() and not alone.ok


def test_short_logs_stay_in_one_process(db_url: str) -> None:
    store = build(db_url)
    assert audit.verify_store(store, workers=4).processes == 1  # under PARALLEL_FROM
