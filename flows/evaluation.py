"""The yearly evaluation of a cohort's approved plans."""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from engine import operations as ops
from engine.evaluation import evaluation_report
from flows.runtime import engine_for
from flows.tasks import TASK_OPTIONS, transient


@task(name="simulate-evaluations", retry_condition_fn=transient,
      task_run_name="simulate-evaluations-{year}", **TASK_OPTIONS)
def simulate_evaluations(db_url: str, programme: str, regions: list[str], year: int,
                         seed: int) -> list[str]:
    """Act as every region (its yearly report) and as the experts (their scores): one task
    for the cohort, since this stands in for people, and a retry skips what is recorded.
    (One task per region cost Prefect ~10 ms each, six times the engine's work.)"""
    eng = engine_for(db_url)
    for region in regions:
        ops.simulate_evaluation(eng, programme, region, year, seed)
    return regions


SUMMARY_FIELDS = ("region_code", "region_name", "submitted", "scored", "mean_completion",
                  "mean_maturity", "behind", "reasons")


@flow(name="evaluation")
def evaluation_flow(db_url: str, programme: str, year: int, simulate: bool = False,
                    seed: int = 0) -> dict[str, Any]:
    """Open ``year``'s evaluation and report on it. With ``simulate`` the regions' reports
    and the experts' scores are simulated (the demo); otherwise they come from people.

    Returns the cohort's figures and each region's headline (submitted, scored, mean
    completion and maturity, behind and why). The per-indicator and per-quick-win detail
    stays in the log (``smartcity evaluate report``): a flow's result is walked by Prefect
    and kept by it where results are persisted, and the detail was ~300 KB a cohort."""
    eng = engine_for(db_url)
    ops.open_evaluation(eng, programme, year)
    if simulate:
        approved = [p.region_code for p in eng.plans(programme) if p.stage == "approved"]
        simulate_evaluations(db_url, programme, approved, year, seed)
    report = evaluation_report(eng, programme, year)
    return {**{k: v for k, v in report.items() if k != "regions"},
            "regions": [{k: r[k] for k in SUMMARY_FIELDS} for r in report["regions"]]}
