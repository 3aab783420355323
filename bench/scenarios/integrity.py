"""3. Verify (hash-chain verification over the whole log) and 4. Projection (the cohort
progress read model built from scratch)."""

from __future__ import annotations

import time
from typing import Any

from bench.core import Context, Row, Target, quiet_logs, scenario

VERIFY_SIZES = {True: (20_000,), False: (100_000, 1_000_000)}
TARGET_RATE = 300_000  # events/s
TARGET_RSS_MB = 150


def fill(url: str, n: int, streams: int = 500, chunk: int = 1000) -> None:
    """``n`` events of ~300 bytes over ``streams`` plans, appended through the store (hashed,
    one command per ``chunk``)."""
    from bench.workload import encoded, meta, plan_history
    from engine.store.eventstore import EventStore

    store = EventStore(url)
    per = max(chunk, n // streams)
    history = encoded(plan_history(per))
    written = 0
    s = 0
    while written < n:
        size = min(per, n - written)
        stream = f"plan:bench:{s:05d}"
        for start in range(0, size, chunk):
            store.append(stream, start, history[start:min(size, start + chunk)], meta())
        written += size
        s += 1
    store.close()


def verify(location: dict[str, Any], runs: int, quick: bool, events: int) -> dict[str, Any]:
    quiet_logs()
    from bench.databases import commit_mode
    from engine import audit
    from engine.store.eventstore import EventStore

    fill(location["url"], events)
    store = EventStore(location["url"])
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        report = audit.verify_store(store)
        times.append(time.perf_counter() - t0)
        assert report.ok and report.events == events, report.to_dict()
    raw = store.engine.raw_connection()
    mode = commit_mode(location, raw.cursor())
    raw.close()
    store.close()
    return {"runs": [events / t for t in times], "events": events, "commit_mode": mode}


def bare_read(location: dict[str, Any], runs: int, quick: bool, events: int) -> dict[str, Any]:
    """The limit: page through the same rows and columns, nothing computed."""
    quiet_logs()
    from sqlalchemy import bindparam, func, select

    from engine.store.eventstore import EventStore
    from engine.store.schema import events as table

    fill(location["url"], events)
    store = EventStore(location["url"])
    # Windows of 5,000 positions (as the store reads): with LIMIT over the rest of the log,
    # PostgreSQL without statistics yet sorts all of the rest for every page.
    query = (select(*table.c).where(table.c.position > bindparam("low"),
                                    table.c.position <= bindparam("high"))
             .order_by(table.c.position))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        last, seen = 0, 0
        with store.engine.connect() as conn:
            top = conn.execute(select(func.max(table.c.position))).scalar() or 0
            while last < top:
                rows = conn.execute(query, {"low": last, "high": last + 5000}).all()
                conn.rollback()
                seen += len(rows)
                last += 5000
        times.append(time.perf_counter() - t0)
        assert seen == events
    store.close()
    return {"runs": [events / t for t in times], "events": events}


@scenario("verify", "3. Verify", order=3)
def verify_scenario(ctx: Context) -> list[Row]:
    rows = []
    for db in ctx.databases:
        for n in VERIFY_SIZES[ctx.quick]:
            ours = ctx.measure("bench.scenarios.integrity:verify", db,
                               system="ours: audit.verify_store", unit="events/s",
                               higher_is_better=True, events=n)
            limit = ctx.measure("bench.scenarios.integrity:bare_read", db,
                                system="bare paged SELECT of the same rows", unit="events/s",
                                higher_is_better=True, events=n)

            def meets(row: Row, n: int = n) -> bool | None:
                if not row.ours.ok:
                    return None
                rate = (row.ours.value or 0) >= TARGET_RATE
                rss = (row.ours.peak_rss_mb or 0) < TARGET_RSS_MB if n >= 1_000_000 else True
                return rate and rss

            rows.append(Row("3. Verify", f"hash chains of {n:,} events", db.name, ours, None,
                            limit, Target(f">= {TARGET_RATE:,} events/s; peak RSS < "
                                          f"{TARGET_RSS_MB} MB at 1M", meets)))
    return rows


# ---------------------------------------------------------------------------- projection
def projection(location: dict[str, Any], runs: int, quick: bool) -> dict[str, Any]:
    quiet_logs()
    from bench.databases import commit_mode
    from bench.scenarios.cohort import _regions, drive_cohort
    from engine.projections import CohortProjection
    from engine.store.eventstore import EventStore

    n = _regions(quick)
    drive_cohort(location["url"], n)
    store = EventStore(location["url"])
    events = store.last_position()
    projection = CohortProjection(store)
    projection.rebuild()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        applied = projection.rebuild()
        times.append(time.perf_counter() - t0)
        assert applied == events
    raw = store.engine.raw_connection()
    mode = commit_mode(location, raw.cursor())
    raw.close()
    store.close()
    return {"runs": [t * 1000 for t in times], "events": events, "regions": n,
            "commit_mode": mode}


def replay_all(location: dict[str, Any], runs: int, quick: bool) -> dict[str, Any]:
    """For scale: every plan folded in memory through the engine (no read model written)."""
    quiet_logs()
    from bench.scenarios.cohort import _regions, drive_cohort
    from engine.application import Engine
    from flows.demo import DEMO_PROGRAMME

    n = _regions(quick)
    drive_cohort(location["url"], n)
    times = []
    for _ in range(runs):
        engine = Engine(location["url"])
        t0 = time.perf_counter()
        plans = engine.plans(DEMO_PROGRAMME)
        times.append((time.perf_counter() - t0) * 1000)
        assert len(plans) == n
        engine.close()
    return {"runs": times, "regions": n}


@scenario("projection", "4. Projection", order=4)
def projection_scenario(ctx: Context) -> list[Row]:
    rows = []
    for db in ctx.databases:
        ours = ctx.measure("bench.scenarios.integrity:projection", db,
                           system="ours: CohortProjection.rebuild (pages of 500, each "
                                  "committed with its checkpoint)", unit="ms",
                           higher_is_better=False)
        folded = ctx.measure("bench.scenarios.integrity:replay_all", db,
                             system="every plan folded in memory (Engine.plans)", unit="ms",
                             higher_is_better=False)
        events = ours.extra.get("events") if ours.ok else None
        row = Row("4. Projection", f"cohort read model from scratch "
                  f"({ours.extra.get('regions', '?')} regions, {events or '?'} events)",
                  db.name, ours, None, folded, Target("reported (no target set)"))
        if events and ours.value:
            row.ratios["events/s"] = round(events / (ours.value / 1000))
        rows.append(row)
    return rows
