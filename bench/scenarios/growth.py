"""6. Growth: append and replay as the log grows to 10^4, 10^5 and (full mode) 10^6 events.

One process per database builds the log plan by plan (1,000 events per plan, one append
each) and, at each size, measures: the batched build rate of the stretch just written, one
command per transaction on top of the log, and rebuilding a sample of plans. Cost per event
should stay flat as the log grows.
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench.core import Context, Figure, Row, Target, at_most, peak_rss_mb, quiet_logs, scenario

PLAN_EVENTS = 1000
SAMPLE_PLANS = 10  # plans rebuilt per replay run (10^4 events)
COMMANDS = 200  # single-event commands per run
FLAT = 1.5  # "flat": cost per event at most this many times the cost at 10^4


def sizes(quick: bool) -> list[int]:
    return [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]


def settle_postgres(store: Any) -> None:
    """After a build, as SQLite's checkpoint: the vacuum and analyze that a bulk insert sets
    autovacuum off to do (and a checkpoint of the build's pages, where the role may), timed
    with the build rather than running under the per-command figures that follow."""
    from psycopg.errors import InsufficientPrivilege

    raw = store.engine.raw_connection()
    driver = raw.dbapi_connection
    driver.autocommit = True  # VACUUM runs outside a transaction block
    try:
        cur = driver.cursor()
        cur.execute("VACUUM ANALYZE events")
        cur.execute("VACUUM ANALYZE commands")
        try:
            cur.execute("CHECKPOINT")
        except InsufficientPrivilege:
            pass  # needs superuser or pg_checkpoint: the server's own checkpoints then
    finally:
        driver.autocommit = False
        raw.close()


def grow(location: dict[str, Any], runs: int, quick: bool) -> dict[str, Any]:
    quiet_logs()
    from bench.databases import commit_mode
    from bench.scenarios.replay import rebuild
    from bench.workload import encoded, form_event, meta, plan_history
    from engine.domain.events import encode
    from engine.store.eventstore import EventStore

    store = EventStore(location["url"])
    template = encoded(plan_history(PLAN_EVENTS))
    rng = random.Random(10)
    out: dict[str, Any] = {"sizes": {}}
    plans = 0
    tx_streams = [f"plan:growth-tx:{i:02d}" for i in range(50)]
    tx_versions = dict.fromkeys(tx_streams, 0)
    k = 0
    for size in sizes(quick):
        t0 = time.perf_counter()
        start = plans
        while plans * PLAN_EVENTS < size:
            store.append(f"plan:growth:{plans:07d}", 0, template, meta())
            plans += 1
        if location["kind"] == "sqlite":
            # the build's WAL pages go to the database file now, timed with the build, rather
            # than in whichever single command crosses the autocheckpoint threshold next
            raw = store.engine.raw_connection()
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            raw.close()
        else:
            settle_postgres(store)
        build_rate = (plans - start) * PLAN_EVENTS / (time.perf_counter() - t0)
        per_tx, replay_us = [], []
        for i in range(-1, runs):  # -1: warm-up
            if i < 0:
                for stream in tx_streams[:10]:
                    store.append(stream, tx_versions[stream], [encode(form_event(k))], meta())
                    tx_versions[stream] += 1
                    k += 1
                rebuild(store, f"plan:growth:{rng.randrange(plans):07d}")
                continue
            t0 = time.perf_counter()
            for _ in range(COMMANDS):
                stream = tx_streams[k % 50]
                store.append(stream, tx_versions[stream], [encode(form_event(k))], meta())
                tx_versions[stream] += 1
                k += 1
            per_tx.append(COMMANDS / (time.perf_counter() - t0))
            sample = rng.sample(range(plans), SAMPLE_PLANS)
            spent = 0.0
            for p in sample:
                _, read, dec, evo = rebuild(store, f"plan:growth:{p:07d}")
                spent += read + dec + evo
            replay_us.append(spent / (SAMPLE_PLANS * PLAN_EVENTS) * 1e6)
        out["sizes"][str(size)] = {"events": store.last_position(), "build_events_per_s": build_rate,
                                   "per_tx_events_per_s": per_tx, "replay_us_per_event": replay_us,
                                   "peak_rss_mb": round(peak_rss_mb(), 1)}
    raw = store.engine.raw_connection()
    out["commit_mode"] = commit_mode(location, raw.cursor())
    raw.close()
    store.close()
    out["runs"] = [len(out["sizes"])]  # the figures are in "sizes"
    return out


@scenario("growth", "6. Growth", order=6)
def growth(ctx: Context) -> list[Row]:
    rows = []
    for db in ctx.databases:
        whole = ctx.measure("bench.scenarios.growth:grow", db, system="ours", unit="-",
                            higher_is_better=True)
        if not whole.ok:
            rows.append(Row("6. Growth", "log growth", db.name, whole))
            continue
        base: dict[str, float] = {}
        for size, m in whole.extra["sizes"].items():
            label = f"10^{len(size) - 1}"
            figures = {
                "append, batches of 1,000 (build)": Figure(
                    "ours: EventStore.append", "events/s", True, [m["build_events_per_s"]]),
                "append, one command per transaction": Figure(
                    "ours: EventStore.append", "events/s", True, m["per_tx_events_per_s"]),
                "replay, 10 plans of 1,000 events": Figure(
                    "ours: load_plan (read_payloads + event_data + fold_data)", "us/event", False,
                    m["replay_us_per_event"]),
            }
            for case, fig in figures.items():
                fig.peak_rss_mb = m["peak_rss_mb"]
                fig.commit_mode = whole.commit_mode
                cost = 1 / fig.value if fig.higher_is_better else fig.value
                base.setdefault(case, cost)
                row = Row("6. Growth", f"{case}, log of {label} events", db.name, fig,
                          target=Target(f"cost per event <= {FLAT:g}x the cost at 10^4",
                                        at_most("cost/event vs 10^4", FLAT)),
                          notes="the build figure is one pass over the stretch written"
                          if "build" in case else "")
                row.ratios["cost/event vs 10^4"] = round(cost / base[case], 2)
                rows.append(row)
    return rows
