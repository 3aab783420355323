"""1. Append: one command per transaction, and a batch of 1,000 events in one transaction."""

from __future__ import annotations

import time
from typing import Any

from bench.core import Context, Row, Target, all_of, at_least, quiet_logs, scenario

BATCH = 1000
STREAMS = 50  # the per-transaction commands go round these plans, as a cohort's officers do


def _commands(quick: bool) -> int:
    return 200 if quick else 1000


# ----------------------------------------------------------------------------------- ours
def ours_per_tx(location: dict[str, Any], runs: int, quick: bool) -> dict[str, Any]:
    """One SubmitForm-sized command per durable transaction: build the event (pydantic
    validation), encode it (canonical JSON, floats refused), append (hash chained, command
    id recorded), commit."""
    quiet_logs()
    from bench.databases import commit_mode
    from bench.workload import average_payload_bytes, form_event, meta
    from engine.domain.events import encode
    from engine.store.eventstore import EventStore

    store = EventStore(location["url"])
    streams = [f"plan:bench:{i:02d}" for i in range(STREAMS)]
    versions = dict.fromkeys(streams, 0)
    sizes = []

    def command(i: int) -> None:
        stream = streams[i % STREAMS]
        new = encode(form_event(i))
        store.append(stream, versions[stream], [new], meta())
        versions[stream] += 1
        if i < 100:
            sizes.append(new)

    for i in range(STREAMS):  # warm-up: every plan has its first event
        command(i)
    n, k, rates = _commands(quick), STREAMS, []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(n):
            command(k)
            k += 1
        rates.append(n / (time.perf_counter() - t0))
    raw = store.engine.raw_connection()
    mode = commit_mode(location, raw.cursor())
    raw.close()
    store.close()
    return {"runs": rates, "commit_mode": mode, "commands_per_run": n,
            "payload_bytes": round(average_payload_bytes(sizes), 1)}


def ours_batch(location: dict[str, Any], runs: int, quick: bool) -> dict[str, Any]:
    """1,000 plan events in one append (one command, one transaction): build, validate,
    encode, hash, insert, commit."""
    quiet_logs()
    from bench.databases import commit_mode
    from bench.workload import form_event, meta, progress_event
    from engine.domain.events import encode
    from engine.store.eventstore import EventStore

    store = EventStore(location["url"])

    def batch(b: int) -> None:
        new = [encode(form_event(i) if i % 2 else progress_event(i)) for i in range(BATCH)]
        store.append(f"plan:batch:{b}", 0, new, meta())

    batch(-1)  # warm-up
    rates = []
    for b in range(runs):
        t0 = time.perf_counter()
        batch(b)
        rates.append(BATCH / (time.perf_counter() - t0))
    raw = store.engine.raw_connection()
    mode = commit_mode(location, raw.cursor())
    raw.close()
    store.close()
    return {"runs": rates, "commit_mode": mode, "events_per_batch": BATCH}


# ---------------------------------------------------------------------------------- peer
def peer_per_tx(location: dict[str, Any], runs: int, quick: bool) -> dict[str, Any]:
    from bench import peer_eventsourcing as es
    from bench.workload import PILLARS, FORMS, form_data

    if not es.VERSION:
        return {"unavailable": "not installed (pip install -e '.[bench]')"}
    app = es.make_app(location)
    plans = [es.Plan(region_code=f"{i:02d}", programme_id="bench") for i in range(STREAMS)]
    for plan in plans:  # warm-up: every plan saved once
        app.save(plan)

    def command(i: int) -> None:
        plan = plans[i % STREAMS]
        plan.submit_form(pillar=PILLARS[i % len(PILLARS)], stage="bimtek_1",
                         form=f"form_{i % FORMS:02d}", data=form_data(i))
        app.save(plan)

    n, k, rates = _commands(quick), 0, []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(n):
            command(k)
            k += 1
        rates.append(n / (time.perf_counter() - t0))
    out = {"runs": rates, "commit_mode": es.commit_mode(app, location),
           "payload_bytes": es.stored_state_bytes(app, location), "commands_per_run": n}
    app.close()
    return out


def peer_batch(location: dict[str, Any], runs: int, quick: bool) -> dict[str, Any]:
    from bench import peer_eventsourcing as es
    from bench.workload import FORMS, PILLARS, QUICK_WINS, form_data

    if not es.VERSION:
        return {"unavailable": "not installed (pip install -e '.[bench]')"}
    app = es.make_app(location)

    def batch(b: int) -> None:
        plan = es.Plan(region_code=f"b{b}", programme_id="bench")
        for i in range(1, BATCH):
            if i % 2:
                plan.submit_form(pillar=PILLARS[i % len(PILLARS)], stage="bimtek_1",
                                 form=f"form_{i % FORMS:02d}", data=form_data(i))
            else:
                plan.report_progress(quick_win_id=f"qw-{i % QUICK_WINS:02d}",
                                     completion_percent=i % 101,
                                     reason="Pengadaan perangkat selesai; pelatihan operator "
                                            f"berjalan di {i % 40} kecamatan sesuai jadwal "
                                            "triwulan, anggaran perubahan diajukan ke DPRD",
                                     evidence=f"https://jdih.example.go.id/laporan/qw-{i:08d}")
        app.save(plan)

    batch(-1)
    rates = []
    for b in range(runs):
        t0 = time.perf_counter()
        batch(b)
        rates.append(BATCH / (time.perf_counter() - t0))
    out = {"runs": rates, "commit_mode": es.commit_mode(app, location),
           "payload_bytes": es.stored_state_bytes(app, location), "events_per_batch": BATCH}
    app.close()
    return out


# -------------------------------------------------------------------------------- limits
def bare_per_tx(location: dict[str, Any], runs: int, quick: bool) -> dict[str, Any]:
    """One prepared row per transaction through the driver: BEGIN IMMEDIATE / INSERT /
    COMMIT on SQLite, INSERT / COMMIT on PostgreSQL (psycopg's implicit BEGIN)."""
    from bench import limits
    from bench.databases import commit_mode
    from bench.workload import encoded, form_event
    from engine.store.database import make_engine

    engine = make_engine(location["url"])
    limits.create(engine)
    postgres = location["kind"] == "postgresql"
    sql = limits.insert_sql(postgres)
    payload = encoded([form_event(7)])[0].payload.decode()
    raw = engine.raw_connection()
    cur = raw.cursor()
    n, rates = _commands(quick), []
    for r in range(-1, runs):  # -1: warm-up
        rows = [tuple(limits.bare_row(f"plan:bare:{r}:{i}", 1, payload).values())
                for i in range(n if r >= 0 else 50)]
        t0 = time.perf_counter()
        for row in rows:
            if not postgres:
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(sql, row)
            raw.commit()
        if r >= 0:
            rates.append(len(rows) / (time.perf_counter() - t0))
    mode = commit_mode(location, cur)
    raw.close()
    engine.dispose()
    return {"runs": rates, "commit_mode": mode, "payload_bytes": len(payload)}


def bare_executemany(location: dict[str, Any], runs: int, quick: bool) -> dict[str, Any]:
    """SQLAlchemy Core executemany of 1,000 prepared rows in one transaction."""
    from sqlalchemy import insert

    from bench import limits
    from bench.databases import commit_mode
    from bench.workload import encoded, form_event
    from engine.store.database import make_engine

    engine = make_engine(location["url"])
    limits.create(engine)
    payload = encoded([form_event(7)])[0].payload.decode()
    statement = insert(limits.bare_events)
    rates = []
    for r in range(-1, runs):
        rows = [limits.bare_row(f"plan:many:{r}", v, payload) for v in range(1, BATCH + 1)]
        t0 = time.perf_counter()
        with engine.connect().execution_options(smartcity_write=True) as conn, conn.begin():
            conn.execute(statement, rows)
        if r >= 0:
            rates.append(BATCH / (time.perf_counter() - t0))
    raw = engine.raw_connection()
    mode = commit_mode(location, raw.cursor())
    raw.close()
    engine.dispose()
    return {"runs": rates, "commit_mode": mode, "payload_bytes": len(payload),
            "rows_per_batch": BATCH}


# ------------------------------------------------------------------------------ scenario
@scenario("append", "1. Append", order=1)
def append(ctx: Context) -> list[Row]:
    from bench import peer_eventsourcing as es

    rows = []
    here = "bench.scenarios.append"
    for db in ctx.databases:
        peer_bar = 1.5 if db.name == "PostgreSQL" else 1.0
        ours, peer, limit = ctx.compare(
            db,
            dict(target=f"{here}:ours_per_tx", system="ours: EventStore.append",
                 unit="events/s", higher_is_better=True),
            dict(target=f"{here}:peer_per_tx", system=f"{es.label()}: save",
                 unit="events/s", higher_is_better=True),
            dict(target=f"{here}:bare_per_tx", system="bare row per transaction (driver)",
                 unit="events/s", higher_is_better=True))
        rows.append(Row(
            "1. Append", "one command per transaction (1 event, new command id)", db.name,
            ours, peer, limit,
            Target(f">= 0.9x bare; >= {peer_bar:g}x eventsourcing",
                   all_of(at_least("vs_limit", 0.9), at_least("vs_peer", peer_bar)))))
        ours, peer, limit = ctx.compare(
            db,
            dict(target=f"{here}:ours_batch", system="ours: EventStore.append",
                 unit="events/s", higher_is_better=True),
            dict(target=f"{here}:peer_batch", system=f"{es.label()}: save",
                 unit="events/s", higher_is_better=True),
            dict(target=f"{here}:bare_executemany",
                 system="SQLAlchemy Core executemany, bare table",
                 unit="events/s", higher_is_better=True))
        rows.append(Row(
            "1. Append", f"batch of {BATCH:,} events in one transaction", db.name,
            ours, peer, limit,
            Target(">= 1.5x eventsourcing; within 2x of executemany (>= 0.5x)",
                   all_of(at_least("vs_peer", 1.5), at_least("vs_limit", 0.5)))))
    return rows
