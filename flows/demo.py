"""`smartcity demo`: a real cohort run to the regents' approval on the embedded default."""

from __future__ import annotations

import csv
import threading
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.application import Engine
from engine.domain.plan import STAGES
from engine.errors import NotFound
from engine.operations import FLOW_OPERATOR
from engine.projections import LiveProgress
from engine.reports import cohort_report

DEMO_PROGRAMME = "m100-2018"
DEMO_YEAR = 2018
# The four regions of the public reports (Ponorogo, Wonosobo, Kota Mojokerto, Kota Sawahlunto)
# come first; the rest is the 2018 cohort of Gerakan Menuju 100 Smart City (cohorts.csv).
FEATURED = ("35.02", "33.07", "35.76", "13.73")


EVALUATION_YEARS = (1, 2)  # the demo goes on past approval: two yearly evaluations


def demo_regions(n: int) -> list[str]:
    text = resources.files("engine.data").joinpath("cohorts.csv").read_text(encoding="utf-8")
    cohort = [r["code"] for r in csv.DictReader(text.splitlines()) if r["year"] == "2018"]
    ordered = list(FEATURED) + [c for c in cohort if c not in FEATURED]
    if not 1 <= n <= len(ordered):
        from engine.errors import FieldError, ValidationError

        raise ValidationError(FieldError("regions", f"{n} is out of range",
                                         fix=f"choose 1 to {len(ordered)}"))
    return ordered[:n]


def ensure_programme(engine: Engine, regions: list[str]) -> None:
    try:
        state = engine.programme(DEMO_PROGRAMME)
    except NotFound:
        engine.create_programme(FLOW_OPERATOR, DEMO_PROGRAMME,
                                "Gerakan Menuju 100 Smart City 2018", DEMO_YEAR, regions,
                                command_id=f"{DEMO_PROGRAMME}:create")
        return
    for code in regions:
        if code not in state.region_codes:
            engine.add_region(FLOW_OPERATOR, DEMO_PROGRAMME, code,
                              command_id=f"{DEMO_PROGRAMME}:add:{code}")


@dataclass
class Timings:
    setup: float = 0.0
    flow: float = 0.0
    report: float = 0.0


class StageWatcher(threading.Thread):
    """Polls the event store (the events since the last poll) and moves one progress bar
    per stage."""

    LABELS = {"bimtek_1": "Bimtek I", "bimtek_2": "Bimtek II", "bimtek_3": "Bimtek III",
              "bimtek_4": "Bimtek IV", "review": "Reviu", "approved": "Persetujuan"}

    def __init__(self, db_url: str, n: int, progress: Progress):
        super().__init__(daemon=True)
        self.engine = Engine(db_url)
        self.progress_rows = LiveProgress(self.engine.store, DEMO_PROGRAMME)
        self.progress = progress
        self.bars = {s: progress.add_task(label, total=n) for s, label in self.LABELS.items()}
        self.stop = threading.Event()

    def poll(self) -> None:
        done = {s: 0 for s in self.bars}
        for plan in self.progress_rows.refresh().values():
            i = STAGES.index(plan["stage"])
            for s in self.bars:
                j = STAGES.index(s)
                if i > j or (i == j and plan["status"] == "done"):
                    done[s] += 1
        for s, bar in self.bars.items():
            self.progress.update(bar, completed=done[s])

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.poll()
        self.poll()
        self.engine.close()


def run_demo(db_url: str, n: int = 50, seed: int = 2018,
             console: Console | None = None) -> dict[str, Any]:
    console = console or Console()
    from flows.runtime import apply_local_defaults, local_run

    apply_local_defaults()
    t0 = time.perf_counter()
    regions = demo_regions(n)
    engine = Engine(db_url)
    ensure_programme(engine, regions)
    console.print(f"[bold]Gerakan Menuju 100 Smart City {DEMO_YEAR}[/bold]: {n} regions, "
                  f"pillars {', '.join(engine.programme(DEMO_PROGRAMME).pillar_ids)}; "
                  f"store {engine.store.url}")
    console.print("Starting Prefect (local ephemeral server) ...")
    from flows.evaluation import evaluation_flow
    from flows.programme import programme_flow

    timings = Timings(setup=time.perf_counter() - t0)
    with Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        watcher = StageWatcher(db_url, n, progress)
        watcher.start()
        t1 = time.perf_counter()
        try:
            with local_run():
                outcome = programme_flow(db_url, DEMO_PROGRAMME, simulate=True, seed=seed)
                evaluations = [evaluation_flow(db_url, DEMO_PROGRAMME, DEMO_YEAR + k,
                                               simulate=True, seed=seed)
                               for k in EVALUATION_YEARS]
        finally:
            watcher.stop.set()
            watcher.join()
        timings.flow = time.perf_counter() - t1
    t2 = time.perf_counter()
    report = cohort_report(engine, DEMO_PROGRAMME)
    timings.report = time.perf_counter() - t2
    print_summary(console, report, outcome, timings)
    print_evaluations(console, evaluations)
    engine.close()
    return {"report": report, "outcome": outcome, "evaluations": evaluations,
            "timings": timings.__dict__}


def print_evaluations(console: Console, evaluations: list[dict[str, Any]]) -> None:
    """One line per evaluation year, then the regions falling behind in the last one."""
    table = Table(title="Evaluasi pasca-persetujuan / evaluation after approval")
    for col in ("year", "submitted", "scored", "mean quick-win completion",
                "mean maturity (1-5)", "falling behind"):
        table.add_column(col)
    for ev in evaluations:
        c = ev["cohort"]
        by_pillar = c["mean_maturity_by_pillar"]
        mean = round(sum(by_pillar.values()) / len(by_pillar), 2) if by_pillar else "-"
        table.add_row(str(ev["year"]), f"{c['submitted']}/{c['approved']}",
                      str(c["scored"]), f"{c['mean_completion']}%", str(mean),
                      str(len(c["falling_behind"])))
    console.print(table)
    if evaluations:
        last = evaluations[-1]
        names = {r["region_code"]: r["region_name"] for r in last["regions"]}
        behind = last["cohort"]["falling_behind"][:8]
        if behind:
            console.print(f"Falling behind in {last['year']}: "
                          + ", ".join(names[c] for c in behind)
                          + (" ..." if len(last["cohort"]["falling_behind"]) > 8 else ""))


def print_summary(console: Console, report: dict[str, Any], outcome: dict[str, Any],
                  timings: Timings) -> None:
    table = Table(title=f"{report['programme']['name']} - summary")
    for col in ("code", "region", "stage", "reviews", "forms", "quick wins", "mean completion"):
        table.add_column(col, justify="right" if col in ("reviews", "quick wins",
                                                         "mean completion") else "left")
    for r in report["regions"]:
        forms = sum(f["submitted"] for f in r["forms"].values())
        required = sum(f["required"] for f in r["forms"].values())
        table.add_row(r["region_code"], r["region_name"], r["stage"], str(r["review_round"]),
                      f"{forms}/{required}", str(len(r["quick_wins"])),
                      "-" if r["mean_completion"] is None else f"{r['mean_completion']}%")
    console.print(table)
    qt = Table(title="Quick wins by pillar")
    qt.add_column("pillar")
    qt.add_column("quick wins", justify="right")
    qt.add_column("mean completion", justify="right")
    for p, v in report["quick_wins_by_pillar"].items():
        qt.add_row(p, str(v["count"]), f"{v['mean_completion']}%")
    console.print(qt)
    stages = ", ".join(f"{s}: {c}" for s, c in report["stages"].items() if c)
    console.print(f"Stages: {stages}. Returned by review and fixed: "
                  f"{report['returned_by_review']}. Blocked: {len(outcome['blocked'])}.")
    console.print(f"Time: set-up {timings.setup:.1f} s, flow {timings.flow:.1f} s "
                  f"(incl. Prefect start-up), report {timings.report:.1f} s.")
