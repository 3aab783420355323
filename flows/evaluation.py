"""The yearly evaluation of a cohort's approved plans, region by region in parallel."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from engine import operations as ops
from engine.evaluation import evaluation_report
from flows.runtime import engine_for
from flows.tasks import RETRIES, transient

WORKERS = 8


@task(name="evaluate-region", retries=RETRIES, retry_delay_seconds=0.2,
      retry_condition_fn=transient, task_run_name="evaluate-{year}-{region}")
def evaluate_region(db_url: str, programme: str, region: str, year: int, seed: int) -> str:
    ops.simulate_evaluation(engine_for(db_url), programme, region, year, seed)
    return region


@flow(name="evaluation", task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
def evaluation_flow(db_url: str, programme: str, year: int, simulate: bool = False,
                    seed: int = 0) -> dict[str, Any]:
    """Open ``year``'s evaluation and report on it. With ``simulate`` the regions' reports
    and the experts' scores are simulated (the demo); otherwise they come from people."""
    eng = engine_for(db_url)
    ops.open_evaluation(eng, programme, year)
    if simulate:
        approved = [p.region_code for p in eng.plans(programme) if p.stage == "approved"]
        for f in evaluate_region.map(db_url, programme, approved, year, seed):
            f.result()
    return evaluation_report(eng, programme, year)
