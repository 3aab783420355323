"""The stage flow, the programme flow (a cohort from bimtek I to the regents' approval) and
the report flow."""

from __future__ import annotations

import random
from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from engine.domain.plan import BIMTEK_STAGES
from engine.reports import cohort_report
from flows.runtime import engine_for
from flows.tasks import advance_region, approve_region, enrol_region, review_region

WORKERS = 8


def returned_by_review(programme: str, region: str, seed: int, share: float) -> bool:
    """Which regions the experts send back once (seeded, so re-runs agree)."""
    return random.Random(f"{seed}:{programme}:{region}:review").random() < share


def run_stage(db_url: str, programme: str, regions: list[str], stage: str, simulate: bool,
              seed: int) -> list[dict[str, Any]]:
    futures = advance_region.map(db_url, programme, regions, stage, simulate, seed)
    return [f.result() for f in futures]


@flow(name="stage", task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
def stage_flow(db_url: str, programme: str, stage: str, simulate: bool = False,
               seed: int = 0) -> list[dict[str, Any]]:
    """For every region of ``programme``: open ``stage``, check each pillar's gate, complete
    it where it passes, and report per region what is missing where it does not."""
    regions = [p.region_code for p in engine_for(db_url).plans(programme)]
    return run_stage(db_url, programme, regions, stage, simulate, seed)


@flow(name="programme", task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
def programme_flow(db_url: str, programme: str, simulate: bool = True, seed: int = 0,
                   return_share: float = 0.2) -> dict[str, Any]:
    """Run a cohort through bimtek I-IV, review and approval, regions in parallel.

    A region whose gate does not pass stays at that stage and is reported; the others go on.
    With ``simulate`` the regions' officers are simulated (the demo)."""
    eng = engine_for(db_url)
    state = eng.programme(programme)
    regions = [f.result() for f in enrol_region.map(db_url, programme, list(state.region_codes))]
    blocked: dict[str, dict[str, Any]] = {}
    for stage in BIMTEK_STAGES:
        for outcome in run_stage(db_url, programme, regions, stage, simulate, seed):
            if not outcome["completed"]:
                blocked[outcome["region"]] = outcome
        regions = [r for r in regions if r not in blocked]
    returns = [returned_by_review(programme, r, seed, return_share) for r in regions]
    for f in review_region.map(db_url, programme, regions, returns, seed):
        f.result()
    for f in approve_region.map(db_url, programme, regions, state.year):
        f.result()
    return {"approved": regions, "blocked": blocked}


@flow(name="report")
def report_flow(db_url: str, programme: str) -> dict[str, Any]:
    """The cohort progress summary: stage per region, forms per pillar, quick wins."""
    return cohort_report(engine_for(db_url), programme)
