"""5. Cohort: `smartcity demo` end to end under Prefect, and the same cohort driven by the
engine alone (the sequence of flows/programme.py, without Prefect)."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.core import Context, Figure, Row, Target, at_most, quiet_logs, scenario

REGIONS = 50
QUICK_REGIONS = 5
SEED = 2018
OPERATIONS = ("enrol", "open_stage", "fill_stage", "close_stage", "review", "approve",
              "open_evaluation", "simulate_evaluation")


def _regions(quick: bool) -> int:
    return QUICK_REGIONS if quick else REGIONS


def _count_events(url: str) -> int:
    from engine.store.eventstore import EventStore

    store = EventStore(url, auto_migrate=False)
    try:
        return store.last_position()
    finally:
        store.close()


class EngineClock:
    """Wraps engine.operations so the time tasks spend in the engine is summed (outermost
    calls only: review calls fill_stage and close_stage itself)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.lock = threading.Lock()
        self.depth = threading.local()
        self.saved: dict[str, Callable[..., Any]] = {}

    def install(self) -> None:
        from engine import operations as ops

        for name in OPERATIONS:
            self.saved[name] = fn = getattr(ops, name)
            setattr(ops, name, self._wrap(fn))

    def uninstall(self) -> None:
        from engine import operations as ops

        for name, fn in self.saved.items():
            setattr(ops, name, fn)

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self.depth, "n", 0)
            self.depth.n = depth + 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth.n = depth
                if depth == 0:
                    with self.lock:
                        self.total += time.perf_counter() - t0

        return timed


def under_prefect(location: dict[str, Any], runs: int, quick: bool,
                  prefect_home: str) -> dict[str, Any]:
    """In one process: start Prefect's local server (timed with a trivial flow), then run
    ``run_demo`` (what `smartcity demo` runs) ``runs`` times, each on a new database."""
    quiet_logs()
    os.environ["PREFECT_HOME"] = prefect_home
    from flows.runtime import apply_local_defaults

    apply_local_defaults()
    t0 = time.perf_counter()
    from prefect import flow

    from bench.databases import sub_location
    from flows.runtime import forget_engines, local_run

    @flow(name="bench-start-up")
    def start_up() -> int:
        return 1

    with local_run():
        start_up()
    startup = time.perf_counter() - t0
    from rich.console import Console

    from flows.demo import run_demo

    n = _regions(quick)
    clock = EngineClock()
    clock.install()
    totals, flows, setups, reports, engine_in_tasks, events = [], [], [], [], [], []
    for r in range(runs):
        with sub_location(location, f"p{r}") as loc:
            clock.total = 0.0
            t0 = time.perf_counter()
            out = run_demo(loc["url"], n, SEED, console=Console(file=io.StringIO()))
            wall = time.perf_counter() - t0
            forget_engines()
            t = out["timings"]
            assert len(out["outcome"]["approved"]) == n, out["outcome"]
            flows.append(t["flow"])
            setups.append(t["setup"])
            reports.append(t["report"])
            totals.append(startup + wall)
            engine_in_tasks.append(round(clock.total, 2))
            events.append(_count_events(loc["url"]))
    clock.uninstall()
    return {"runs": totals, "prefect_startup_s": round(startup, 2), "flow_s": flows,
            "setup_s": setups, "report_s": reports, "engine_in_tasks_s": engine_in_tasks,
            "regions": n, "events": events, "prefect_home": prefect_home,
            "commit_mode": _mode(location)}


def drive_cohort(url: str, n: int, seed: int = SEED) -> dict[str, Any]:
    """What `smartcity demo` runs, with the engine alone: each region enrolled, taken
    through bimtek I-IV (open / fill / close), reviewed and approved, then the two
    yearly evaluations (open, each region's report and scores, the evaluation report), and
    the cohort report."""
    from engine.application import Engine
    from engine import operations as ops
    from engine.domain.plan import BIMTEK_STAGES
    from engine.errors import NotFound
    from engine.evaluation import evaluation_report
    from engine.reports import cohort_report
    from flows.demo import (DEMO_PROGRAMME, DEMO_YEAR, EVALUATION_YEARS, demo_regions,
                            ensure_programme)
    from flows.programme import returned_by_review

    engine = Engine(url)
    regions = demo_regions(n)
    ensure_programme(engine, regions)
    year = engine.programme(DEMO_PROGRAMME).year
    for region in regions:  # as run_region, one region after the other
        try:
            engine.plan(DEMO_PROGRAMME, region)
        except NotFound:
            ops.enrol(engine, DEMO_PROGRAMME, region)
        for stage in BIMTEK_STAGES:
            ops.open_stage(engine, DEMO_PROGRAMME, region, stage)
            ops.fill_stage(engine, DEMO_PROGRAMME, region, stage, seed)
            outcome = ops.close_stage(engine, DEMO_PROGRAMME, region, stage)
            assert outcome.completed, outcome
        ops.review(engine, DEMO_PROGRAMME, region,
                   return_first=returned_by_review(DEMO_PROGRAMME, region, seed, 0.2), seed=seed)
        ops.approve(engine, DEMO_PROGRAMME, region, year)
    for year_after in EVALUATION_YEARS:  # as the demo, two yearly evaluations after approval
        ops.open_evaluation(engine, DEMO_PROGRAMME, DEMO_YEAR + year_after)
        for region in regions:
            ops.simulate_evaluation(engine, DEMO_PROGRAMME, region, DEMO_YEAR + year_after, seed)
        evaluation_report(engine, DEMO_PROGRAMME, DEMO_YEAR + year_after)
    report = cohort_report(engine, DEMO_PROGRAMME)
    engine.close()
    return report


def engine_only(location: dict[str, Any], runs: int, quick: bool) -> dict[str, Any]:
    quiet_logs()
    from bench.databases import sub_location

    n = _regions(quick)
    times, events = [], []
    for r in range(-1, runs):  # -1: warm-up (imports, the pillar registry)
        with sub_location(location, f"e{r + 1}") as loc:
            t0 = time.perf_counter()
            report = drive_cohort(loc["url"], n)
            if r >= 0:
                times.append(time.perf_counter() - t0)
                events.append(_count_events(loc["url"]))
            assert report["stages"].get("approved") == n, report["stages"]
    return {"runs": times, "regions": n, "events": events, "commit_mode": _mode(location)}


def _mode(location: dict[str, Any]) -> str:
    from bench.databases import commit_mode
    from engine.store.database import make_engine

    engine = make_engine(location["url"])
    raw = engine.raw_connection()
    try:
        return commit_mode(location, raw.cursor())
    finally:
        raw.close()
        engine.dispose()


def prefect_home() -> str:
    """A PREFECT_HOME kept between bench runs, so the server's database is migrated once
    (the first run on a new home pays ~10 s more start-up)."""
    import tempfile

    path = os.environ.get("SMARTCITY_BENCH_PREFECT_HOME") or os.path.join(
        tempfile.gettempdir(), "smartcity-bench-prefect")
    os.makedirs(path, exist_ok=True)
    return path


@scenario("cohort", "5. Cohort", order=5)
def cohort(ctx: Context) -> list[Row]:
    rows = []
    n = _regions(ctx.quick)
    # quick: SQLite only (Prefect's start-up alone is most of a quick run's time budget)
    for db in ctx.databases[:1] if ctx.quick else ctx.databases:
        e2e = ctx.measure("bench.scenarios.cohort:under_prefect", db,
                          system="smartcity demo (Prefect), end to end", unit="s",
                          higher_is_better=False, prefect_home=prefect_home())
        alone = ctx.measure("bench.scenarios.cohort:engine_only", db,
                            system="engine alone, same sequence, no Prefect", unit="s",
                            higher_is_better=False)
        x = e2e.extra
        notes = ""
        if e2e.ok:
            notes = (f"Prefect start-up {x['prefect_startup_s']:.1f} s; demo set-up "
                     f"{_med(x['setup_s']):.1f} s; flow {_med(x['flow_s']):.1f} s, of which "
                     f"{_med(x['engine_in_tasks_s']):.1f} s inside engine operations (summed "
                     f"over {8} task threads); report {_med(x['report_s']):.1f} s; "
                     f"{_med(x['events']):.0f} events")
        rows.append(Row("5. Cohort", f"{n} regions under Prefect, end to end incl. start-up",
                        db.name, e2e, None, None,
                        Target("< 60 s" + (" (50 regions; quick runs fewer)" if ctx.quick else ""),
                               (lambda row: row.ours.value < 60) if not ctx.quick else None),
                        notes=notes))
        flow = Figure(system="orchestration + engine work (flow, excl. start-up)", unit="s",
                      higher_is_better=False, runs=list(x.get("flow_s", [])),
                      peak_rss_mb=e2e.peak_rss_mb, commit_mode=e2e.commit_mode,
                      error=e2e.error, unavailable=e2e.unavailable)
        row = Row("5. Cohort", f"{n} regions: Prefect flow vs engine alone", db.name, flow,
                  None, alone, Target("flow (excl. start-up) <= 2x engine alone"
                                      + (" (50 regions; quick runs fewer)" if ctx.quick else ""),
                                      None if ctx.quick else at_most("flow / engine alone", 2.0)))
        if flow.ok and alone.ok:
            row.ratios["flow / engine alone"] = round(flow.value / alone.value, 2)
        rows.append(row)
    return rows


def _med(values: list[float]) -> float:
    import statistics

    return statistics.median(values) if values else float("nan")
