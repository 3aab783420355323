"""Reliability: many writers, killed writers, killed projections, tampering, migrations.

Short seeded variants always run; the long ones are marked ``slow`` (``pytest -m slow``).
Every guarantee these tests prove is listed in docs/reliability.md.
"""

from __future__ import annotations

import ast
import multiprocessing as mp
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from engine import audit
from engine import operations as ops
from engine.application import Engine, retry_on_conflict
from engine.errors import ConcurrencyError
from engine.pillars import BUILTIN_ORDER, PillarRegistry, load_registry
from engine.projections import CohortProjection
from engine.records import EventMeta, NewEvent
from engine.store.eventstore import EventStore
from engine.store.schema import commands, events
from tests.helpers import advance_to

PROGRAMME = "m100-2023"
SHARED = "35.02"  # Ponorogo: every writer hits this plan
OWN = ["35.76", "33.07", "13.73", "51.71", "64.72", "71.71", "52.03", "36.73"]
FORM = ("governance", "bimtek_1", "spbe_assessment")


def _ctx() -> Any:
    """Fork from a clean single-threaded server: fast to start, safe to kill."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["engine.application", "engine.store.eventstore",
                                "engine.projections"])
    return ctx


# ---------------------------------------------------------------------------- concurrency
def _commander(url: str, worker: int, count: int, data: dict[str, Any], barrier: Any,
               results: Any) -> None:
    """Issue ``count`` SubmitForm commands, alternating the shared plan and this worker's
    own; retry conflicts with the documented helper. Reports conflicts seen."""
    os.environ["SMARTCITY_LOAD_PILLARS"] = ",".join(BUILTIN_ORDER)
    engine = Engine(url, registry=load_registry(only=BUILTIN_ORDER))
    conflicts = {"shared": 0, "own": 0}
    officer_cache: dict[str, Any] = {}
    barrier.wait(timeout=120)
    for i in range(count):
        region = SHARED if i % 2 == 0 else OWN[worker]
        where = "shared" if region == SHARED else "own"
        actor = officer_cache.setdefault(region, ops.officer_of(region))

        def submit(region: str = region, actor: Any = actor, i: int = i,
                   where: str = where) -> None:
            try:
                engine.execute(actor, PROGRAMME, region, "SubmitForm",
                               {"pillar": FORM[0], "stage": FORM[1], "form": FORM[2],
                                "data": data}, command_id=f"w{worker}-c{i}")
            except ConcurrencyError:
                conflicts[where] += 1
                raise

        retry_on_conflict(submit, attempts=200, backoff=0.001)
    engine.close()
    results.put((worker, conflicts))


def _cohort(engine: Engine, operator: Any, regions: list[str]) -> dict[str, Any]:
    engine.create_programme(operator, PROGRAMME, "Menuju 100 Smart City 2023", 2023, regions)
    for region in regions:
        ops.enrol(engine, PROGRAMME, region)
        ops.open_stage(engine, PROGRAMME, region, "bimtek_1")
    spec = engine.registry.form_spec(*FORM)
    assert spec.example is not None
    return spec.example(engine.plan(PROGRAMME, SHARED), random.Random(7))


def _run_commanders(engine: Engine, operator: Any, url: str, workers: int,
                    count: int) -> None:
    data = _cohort(engine, operator, [SHARED, *OWN[:workers]])
    ctx = _ctx()
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_commander, args=(url, w, count, data, barrier, results))
             for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(1800)
        assert p.exitcode == 0, f"writer exited with {p.exitcode}"
    seen = dict(results.get(timeout=10) for _ in procs)
    shared_conflicts = sum(c["shared"] for c in seen.values())

    store = engine.store
    with store.engine.connect() as conn:
        recorded = set(conn.execute(select(commands.c.command_id)
                                    .where(commands.c.command_id.like("w%"))).scalars())
        per_command = dict(conn.execute(select(events.c.command_id, func.count())
                                        .where(events.c.command_id.like("w%"))
                                        .group_by(events.c.command_id)).all())
    expected = {f"w{w}-c{i}" for w in range(workers) for i in range(count)}
    assert recorded == expected  # none lost
    assert set(per_command.values()) == {1}  # none written twice
    for region in [SHARED, *OWN[:workers]]:
        stored = store.read_stream(f"plan:{PROGRAMME}:{region}")
        assert [e.version for e in stored] == list(range(1, len(stored) + 1))  # contiguous
    fresh = Engine(url, registry=engine.registry)  # nothing cached: a serial replay
    try:
        shared = fresh.plan(PROGRAMME, SHARED)
        assert shared == audit.replay(store.read_stream(f"plan:{PROGRAMME}:{SHARED}"))
        entry = shared.form(FORM[1], FORM[0], FORM[2])
        assert entry is not None and entry.submissions == workers * ((count + 1) // 2)
        for w in range(workers):
            own = fresh.plan(PROGRAMME, OWN[w]).form(FORM[1], FORM[0], FORM[2])
            assert own is not None and own.submissions == count // 2
    finally:
        fresh.close()
    assert audit.verify_store(store).ok
    if count >= 20:
        assert shared_conflicts > 0  # the contention was real, and surfaced as conflicts


def test_eight_processes_share_a_plan_and_lose_nothing(engine, operator, db_url) -> None:  # type: ignore[no-untyped-def]
    _run_commanders(engine, operator, db_url, workers=8, count=30)


@pytest.mark.slow
def test_eight_processes_issue_a_thousand_commands_each(engine, operator, db_url) -> None:  # type: ignore[no-untyped-def]
    _run_commanders(engine, operator, db_url, workers=8, count=1000)


# ---------------------------------------------------------------------------- crashes
BATCH = 100
PAYLOAD = b'{"note":"' + b"x" * 280 + b'"}'


def _batch_writer(url: str, seed: int) -> None:
    """Append batches of BATCH events, one command each, until killed."""
    store = EventStore(url)
    rng = random.Random(seed)
    i = 0
    while True:
        stream = f"plan:crash:{rng.randrange(5)}"
        store.append(stream, None, [NewEvent("CrashProbe", 1, PAYLOAD)] * BATCH,
                     EventMeta("crash-writer", "operator", f"s{seed}-b{i}", f"s{seed}"))
        i += 1


def _no_partial_batch(store: EventStore) -> None:
    # One snapshot for both counts (SQLite's transaction is one already): a killed client's
    # last statement may still commit on the PostgreSQL server (a whole batch, as it
    # should) between two separate reads.
    with store.engine.connect() as conn:
        if store.is_postgres:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        sizes = conn.execute(select(events.c.command_id, func.count())
                             .where(events.c.stream_id.like("plan:crash:%"))
                             .group_by(events.c.command_id)).all()
        ranges = conn.execute(select(func.sum(commands.c.last_version
                                              - commands.c.first_version + 1))
                              .where(commands.c.stream_id.like("plan:crash:%"))).scalar()
    assert all(n == BATCH for _, n in sizes), [s for s in sizes if s[1] != BATCH]
    assert (ranges or 0) == sum(n for _, n in sizes)


def _kill_writers(url: str, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    ctx = _ctx()
    store = EventStore(url)
    for k in range(kills):
        p = ctx.Process(target=_batch_writer, args=(url, seed * 1000 + k))
        p.start()
        time.sleep(rng.uniform(0.0, 0.25))  # sometimes while starting, mostly mid-write
        p.kill()  # SIGKILL: no cleanup, no rollback in the process
        p.join(30)
        assert p.exitcode == -9
        _no_partial_batch(store)
        if k % 10 == 9:
            assert audit.verify_store(store).ok
    assert audit.verify_store(store).ok
    # the store reopens and accepts writes
    again = EventStore(url)
    again.append("plan:crash:after", 0, [NewEvent("CrashProbe", 1, PAYLOAD)],
                 EventMeta("tester", "operator", "after-crashes", "after"))
    assert again.stream_version("plan:crash:after") == 1
    again.close()
    store.close()


def test_killed_writers_never_leave_a_partial_batch(db_url: str, request) -> None:  # type: ignore[no-untyped-def]
    kills = 60 if "sqlite" in db_url else 40  # 100 SIGKILLs per run of the suite
    _kill_writers(db_url, kills, seed=20231)


@pytest.mark.slow
def test_killed_writers_many_times(db_url: str) -> None:
    _kill_writers(db_url, 300, seed=77)


# ---------------------------------------------------------------------------- projection
def expected_progress(engine: Engine) -> dict[str, Any]:
    """The read model computed independently, from the plans' state."""
    out = {}
    for plan in engine.plans(PROGRAMME):
        out[plan.plan_id] = {
            "plan": (plan.stage, plan.status, plan.review_round, len(plan.findings),
                     len(plan.refusals), plan.version),
            "forms": sorted((f.stage, f.pillar, f.form, f.submissions)
                            for f in plan.forms.values()),
            "quick_wins": sorted((q.quick_win_id, q.pillar, q.completion_percent,
                                  len(q.progress)) for q in plan.quick_wins.values()),
        }
    return out


def projected(projection: CohortProjection) -> dict[str, Any]:
    out = {}
    for row in projection.plans(PROGRAMME):
        sid = row["stream_id"]
        out[sid] = {
            "plan": (row["stage"], row["status"], row["review_round"], row["findings"],
                     row["refusals"], row["version"]),
            "forms": sorted((f["stage"], f["pillar"], f["form"], f["submissions"])
                            for f in projection.forms(sid)),
            "quick_wins": sorted((q["quick_win_id"], q["pillar"], q["completion_percent"],
                                  q["reports"]) for q in projection.quick_wins(sid)),
        }
    return out


@pytest.fixture
def busy(engine: Engine, operator: Any) -> Engine:
    """Three plans at different points, one returned by review and refused once."""
    advance_to(engine, operator, PROGRAMME, "35.02", "bimtek_4")
    ops.close_stage(engine, PROGRAMME, "35.02", "bimtek_4")
    ops.review(engine, PROGRAMME, "35.02", return_first=True)
    engine.execute(ops.regent_of("35.02"), PROGRAMME, "35.02", "RefuseApproval",
                   {"reason": "Selaraskan dengan RPJMD"})
    engine.execute(ops.REVIEWER, PROGRAMME, "35.02", "PassReview", {})
    ops.approve(engine, PROGRAMME, "35.02", 2023)
    advance_to(engine, operator, PROGRAMME, "35.76", "bimtek_3")
    advance_to(engine, operator, PROGRAMME, "33.07", "bimtek_1")
    return engine


def test_projection_matches_the_plans_and_follows_new_events(busy: Engine) -> None:
    projection = CohortProjection(busy.store, page_size=37)
    applied = projection.run()
    assert applied == busy.store.last_position()
    assert projected(projection) == expected_progress(busy)
    assert projection.run() == 0  # nothing new, nothing applied again
    ops.fill_stage(busy, PROGRAMME, "33.07", "bimtek_1", seed=3)
    ops.close_stage(busy, PROGRAMME, "33.07", "bimtek_1")
    assert projection.run() > 0
    assert projected(projection) == expected_progress(busy)
    before = projected(projection)
    assert projection.rebuild() == busy.store.last_position()
    assert projected(projection) == before
    assert projection.checkpoint().events == busy.store.last_position()


def test_live_progress_matches_the_plans_reading_only_new_events(busy: Engine) -> None:
    """The demo's progress display: the read model's plan rows in memory, each refresh
    reading only the events since the last one."""
    from engine.projections import LiveProgress

    live = LiveProgress(busy.store, PROGRAMME)

    def rows() -> dict[str, Any]:
        return {sid: (r["stage"], r["status"], r["review_round"], r["findings"],
                      r["refusals"], r["version"]) for sid, r in live.refresh().items()}

    def plans() -> dict[str, Any]:
        return {sid: p["plan"] for sid, p in expected_progress(busy).items()}

    assert rows() == plans()
    assert live.after == busy.store.last_position()
    reads: list[int] = []
    read_all = busy.store.read_all

    def counted(from_position: int = 0, *args: Any, **kwargs: Any) -> Any:
        reads.append(from_position)
        return read_all(from_position, *args, **kwargs)

    busy.store.read_all = counted  # type: ignore[method-assign]
    mark = busy.store.last_position()
    ops.fill_stage(busy, PROGRAMME, "33.07", "bimtek_1", seed=3)
    ops.close_stage(busy, PROGRAMME, "33.07", "bimtek_1")
    assert rows() == plans()
    assert reads == [mark]  # only what came after the last refresh
    assert rows()["plan:m100-2023:33.07"][:2] == ("bimtek_1", "done")


def _projector(url: str, pages: Any) -> None:
    def committed(_n: int) -> None:
        pages.value += 1

    CohortProjection(EventStore(url), page_size=2).rebuild(on_page=committed)


def test_killed_projection_rebuild_resumes_without_double_counting(busy: Engine,
                                                                     db_url: str) -> None:
    expected = expected_progress(busy)
    total_pages = -(-busy.store.last_position() // 2)
    rng = random.Random(5)
    ctx = _ctx()
    for _ in range(8):
        pages = ctx.Value("i", 0)
        p = ctx.Process(target=_projector, args=(db_url, pages))
        p.start()
        target = rng.randrange(1, total_pages - 25)  # leave pages for the kill to land in
        deadline = time.monotonic() + 60
        while pages.value < target and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.003))  # between pages or in the middle of one
        p.kill()
        p.join(30)
        projection = CohortProjection(busy.store, page_size=20)
        done = projection.checkpoint()
        assert 0 < done.position < busy.store.last_position()  # it died mid-rebuild
        assert done.events == done.position  # every event up to it applied exactly once
        projection.run()  # resume from the checkpoint
        assert projected(projection) == expected
        assert projection.checkpoint().events == busy.store.last_position()


# ---------------------------------------------------------------------------- tampering
def test_random_tampering_is_always_detected(busy: Engine) -> None:
    """Random single-byte changes, deletions, insertions and reorderings, straight in
    the database: verify catches every one (seeded, restored after each)."""
    from tests.test_audit import behind_the_engines_back

    behind_the_engines_back(busy)
    rng = random.Random(4242)
    cols = ["stream_id", "event_type", "payload", "actor_id", "actor_role", "occurred_at",
            "command_id", "correlation_id", "hash"]
    with busy.store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM events"))]
    assert audit.verify_store(busy.store).ok
    for trial in range(60):
        kind = ["byte", "delete", "insert", "reorder"][trial % 4]
        row = rng.choice(rows)
        with busy.store.engine.connect() as conn:
            tx = conn.begin()
            if kind == "byte":
                col = rng.choice(cols)
                value = row[col]
                i = rng.randrange(len(value))
                new = value[:i] + chr((ord(value[i]) + rng.randrange(1, 26)) % 0x7f or 65) \
                    + value[i + 1:]
                conn.execute(text(f"UPDATE events SET {col} = :v WHERE position = :p"),
                             {"v": new, "p": row["position"]})
            elif kind == "delete":
                conn.execute(text("DELETE FROM events WHERE position = :p"),
                             {"p": row["position"]})
            elif kind == "insert":
                copy = {k: v for k, v in row.items() if k != "position"}
                copy["version"] = 10_000 + trial
                conn.execute(text(f"INSERT INTO events ({', '.join(copy)}) VALUES "
                                  f"({', '.join(':' + k for k in copy)})"), copy)
            else:
                other = rng.choice([r for r in rows if r["stream_id"] == row["stream_id"]
                                    and r["position"] != row["position"]])
                for pos, version in ((row["position"], -1),
                                     (other["position"], row["version"]),
                                     (row["position"], other["version"])):
                    conn.execute(text("UPDATE events SET version = :v WHERE position = :p"),
                                 {"v": version, "p": pos})
            conn.commit()
            try:
                assert not audit.verify_store(busy.store).ok, (kind, row["position"])
            finally:
                tx = conn.begin()
                conn.execute(text("DELETE FROM events WHERE position = :p OR version >= 10000"),
                             {"p": row["position"]})
                if kind == "reorder":
                    conn.execute(text("DELETE FROM events WHERE position = :p"),
                                 {"p": other["position"]})
                    conn.execute(text(f"INSERT INTO events ({', '.join(other)}) VALUES "
                                      f"({', '.join(':' + k for k in other)})"), other)
                conn.execute(text(f"INSERT INTO events ({', '.join(row)}) VALUES "
                                  f"({', '.join(':' + k for k in row)})"), row)
                tx.commit()
        assert audit.verify_store(busy.store).ok, f"restoring after {kind} failed"


# ---------------------------------------------------------------------------- migrations
def test_a_first_migration_database_upgrades_with_its_events_intact(tmp_path: Path,
                                                                    registry: PillarRegistry,
                                                                    operator: Any) -> None:
    from engine.store.database import current_revision, make_engine, migrate

    url = f"sqlite:///{tmp_path}/old.db"
    old = make_engine(url)
    migrate(old, "0001")
    assert current_revision(old) == "0001"
    store = EventStore(engine=old, auto_migrate=False)
    engine = Engine(store=store, registry=registry)
    advance_to(engine, operator, PROGRAMME, "35.02", "bimtek_2")
    anchor = audit.make_anchor(store)
    engine.close()

    upgraded = Engine(url, registry=registry)  # opening migrates to head
    try:
        assert current_revision(upgraded.store.engine) not in (None, "0001")
        report = audit.verify_store(upgraded.store, anchor=anchor)
        assert report.ok and report.events == anchor_events(anchor)
        assert upgraded.plan(PROGRAMME, "35.02").stage == "bimtek_2"
        projection = CohortProjection(upgraded.store)
        projection.run()
        assert projected(projection) == expected_progress(upgraded)
        advance_to(upgraded, operator, PROGRAMME, "35.02", "bimtek_3")  # and it writes
        assert audit.verify_store(upgraded.store).ok
    finally:
        upgraded.close()


def _index_names(store: EventStore) -> set[str]:
    from sqlalchemy import inspect

    return {ix["name"] for ix in inspect(store.engine).get_indexes("events")}


def test_a_fourth_migration_database_upgrades_to_leaner_appends_and_back(  # type: ignore[no-untyped-def]
        db_url: str, registry: PillarRegistry, operator: Any) -> None:
    """0005 drops the events' command-id index and (SQLite) rebuilds ``commands`` WITHOUT
    ROWID: the recorded commands stay, stay append-only and keep commands idempotent."""
    from alembic import command
    from sqlalchemy.exc import DBAPIError

    from engine.store.database import _alembic_config, current_revision, make_engine, migrate

    old = make_engine(db_url)
    migrate(old, "0004")
    store = EventStore(engine=old, auto_migrate=False)
    assert "ix_events_command_id" in _index_names(store)
    engine = Engine(store=store, registry=registry)
    advance_to(engine, operator, PROGRAMME, "35.02", "bimtek_1")
    with old.connect() as conn:
        before = sorted(conn.execute(select(commands)).all())
    anchor = audit.make_anchor(store)
    engine.close()

    upgraded = Engine(db_url, registry=registry)  # opening migrates to head
    try:
        store = upgraded.store
        assert current_revision(store.engine) == "0005"
        assert "ix_events_command_id" not in _index_names(store)
        with store.engine.connect() as conn:
            assert sorted(conn.execute(select(commands)).all()) == before
            if not store.is_postgres:
                sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = "
                                        "'commands'")).scalar_one()
                assert "WITHOUT ROWID" in sql
        with store.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text("DELETE FROM commands"))
        report = audit.verify_store(store, anchor=anchor)
        assert report.ok and report.events == anchor_events(anchor)
        # a command recorded before the upgrade is still recognised, and writes nothing
        command_id, stream_id = before[0][0], before[0][1]
        recorded = store.events_for_command(command_id)
        last = store.last_position()
        again = store.append(stream_id, None, [NewEvent("Anything", 1, b"{}")],
                             EventMeta("op", "operator", command_id, command_id))
        assert again == recorded and store.last_position() == last
        advance_to(upgraded, operator, PROGRAMME, "35.02", "bimtek_2")  # and it writes
        assert audit.verify_store(store).ok
        store.close()
        with store.engine.connect() as conn:  # and back down, rows kept
            command.downgrade(_alembic_config(conn), "0004")
            conn.commit()
        assert current_revision(store.engine) == "0004"
        assert "ix_events_command_id" in _index_names(store)
        with store.engine.connect() as conn:
            assert len(conn.execute(select(commands)).all()) > len(before)
    finally:
        upgraded.close()


def anchor_events(anchor: dict[str, Any]) -> int:
    return sum(h["version"] for h in anchor["streams"].values())


# ---------------------------------------------------------------------------- SQL
def test_sql_is_built_only_through_bound_parameters() -> None:
    """No SQL string in the engine is assembled from values at run time: text() and
    exec_driver_sql() take literal strings only (migrations' DDL excepted)."""
    root = Path(__file__).parents[1] / "engine"
    offenders = []
    for path in root.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("text", "exec_driver_sql", "execute") and isinstance(
                    node.args[0], ast.JoinedStr | ast.BinOp):
                offenders.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert offenders == []


def test_every_test_named_in_the_reliability_guarantees_exists() -> None:
    """docs/reliability.md points at tests by name; none of those names may go stale."""
    import re

    root = Path(__file__).parents[1]
    doc = (root / "docs" / "reliability.md").read_text(encoding="utf-8")
    named: set[tuple[str, str]] = set()
    for line in doc.splitlines():
        module = None
        for mod, test in re.findall(r"`(test_\w+\.py)?::(test_\w+)`", line):
            module = mod or module  # `::test_x` continues the last module named
            assert module, f"{test} is named without its module in: {line[:60]}"
            named.add((module, test))
    assert len(named) > 25
    for module, test in sorted(named):
        source = (root / "tests" / module).read_text(encoding="utf-8")
        assert f"def {test}(" in source, f"{module}::{test} is named in docs/reliability.md"


def test_projection_commands(busy: Engine, db_url: str) -> None:
    import json

    from typer.testing import CliRunner

    from engine.cli import app

    runner = CliRunner()
    status = runner.invoke(app, ["projection", "status", "--json", "--db", db_url])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["behind"] == busy.store.last_position()
    ran = runner.invoke(app, ["projection", "run", "--db", db_url])
    assert ran.exit_code == 0 and f"applied {busy.store.last_position()} events" in ran.output
    status = json.loads(runner.invoke(app, ["projection", "status", "--json", "--programme",
                                            PROGRAMME, "--db", db_url]).output)
    assert status["behind"] == 0
    assert {r["region_code"]: r["stage"] for r in status["plans"]} == {
        "35.02": "approved", "35.76": "bimtek_3", "33.07": "bimtek_1"}
    rebuilt = runner.invoke(app, ["projection", "rebuild", "--db", db_url])
    assert rebuilt.exit_code == 0 and "rebuilt from" in rebuilt.output
