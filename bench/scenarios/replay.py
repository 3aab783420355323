"""2. Replay: rebuild one plan of 10,000 events from the store."""

from __future__ import annotations

import time
from typing import Any

from bench.core import Context, Row, Target, at_least, quiet_logs, scenario

EVENTS = 10_000


def build_plan(store: Any, stream: str, n: int, chunk: int = 1000) -> None:
    """Append a plan of ``n`` events directly, ``chunk`` events per append."""
    from bench.workload import encoded, meta, plan_history

    history = encoded(plan_history(n))
    for start in range(0, n, chunk):
        store.append(stream, start, history[start:start + chunk], meta())


def rebuild(store: Any, stream: str) -> tuple[Any, float, float, float]:
    """What ``engine.application.load_plan`` does (the engine's only way to a plan's state),
    step by step: read the stream's payloads, decode them, fold them. Returns the state and
    the seconds of each step."""
    from engine.application import LONG_FOLD, no_cyclic_gc
    from engine.domain import plan as P
    from engine.domain.events import event_data

    t0 = time.perf_counter()
    rows = store.read_payloads(stream)
    t1 = time.perf_counter()
    with no_cyclic_gc(len(rows) >= LONG_FOLD):  # as load_plan
        items = [(t, event_data(t, s, p)) for _, t, s, p in rows]
        t2 = time.perf_counter()
        state = P.fold_data(items, version=rows[-1][0])
    t3 = time.perf_counter()
    return state, t1 - t0, t2 - t1, t3 - t2


def ours(location: dict[str, Any], runs: int, quick: bool, events: int = EVENTS) -> dict[str, Any]:
    quiet_logs()
    from bench.databases import commit_mode
    from engine.store.eventstore import EventStore

    store = EventStore(location["url"])
    stream = "plan:bench:35.02"
    build_plan(store, stream, events)
    rebuild(store, stream)  # warm-up
    total, parts = [], {"read_ms": [], "decode_ms": [], "evolve_ms": []}
    for _ in range(runs):
        state, read, dec, evo = rebuild(store, stream)
        total.append((read + dec + evo) * 1000)
        for key, value in zip(parts, (read, dec, evo), strict=True):
            parts[key].append(round(value * 1000, 1))
    assert state is not None and len(state.forms) > 0 and state.version == events
    from engine.application import load_plan

    assert load_plan(store, stream) == state
    raw = store.engine.raw_connection()
    mode = commit_mode(location, raw.cursor())
    raw.close()
    store.close()
    return {"runs": total, "commit_mode": mode, "events": events, **parts}


def peer(location: dict[str, Any], runs: int, quick: bool, events: int = EVENTS) -> dict[str, Any]:
    from bench import peer_eventsourcing as es
    from bench.workload import plan_history

    if not es.VERSION:
        return {"unavailable": "not installed (pip install -e '.[bench]')"}
    app = es.make_app(location)
    plan = es.Plan(region_code="35.02", programme_id="bench")
    for ev in plan_history(events + 11)[12:]:  # its own creation event plus events - 1
        es.apply_plan_event(plan, ev)
        if len(plan.pending_events) >= 1000:
            app.save(plan)
    app.save(plan)
    assert plan.version == events, plan.version
    app.repository.get(plan.id)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rebuilt = app.repository.get(plan.id)
        times.append((time.perf_counter() - t0) * 1000)
    assert rebuilt.version == events
    out = {"runs": times, "commit_mode": es.commit_mode(app, location), "events": events}
    app.close()
    return out


@scenario("replay", "2. Replay", order=2)
def replay(ctx: Context) -> list[Row]:
    from bench import peer_eventsourcing as es

    rows = []
    for db in ctx.databases:
        o, p = ctx.compare(
            db,
            dict(target="bench.scenarios.replay:ours",
                 system="ours: load_plan (read_payloads + event_data + fold_data)", unit="ms",
                 higher_is_better=False),
            dict(target="bench.scenarios.replay:peer", system=f"{es.label()}: repository.get",
                 unit="ms", higher_is_better=False))
        rows.append(Row("2. Replay", f"rebuild one plan of {EVENTS:,} events", db.name, o, p,
                        None, Target(">= 4x faster than eventsourcing (about 50 ms or less)",
                                     at_least("vs_peer", 4.0))))
    return rows
