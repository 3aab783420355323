"""The stage flow, the programme flow (a cohort from bimtek I to the regents' approval) and
the report flow."""

from __future__ import annotations

import random
from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from engine.reports import cohort_report
from flows.runtime import engine_for
from flows.tasks import advance_region, run_region

WORKERS = 8


def returned_by_review(programme: str, region: str, seed: int, share: float) -> bool:
    """Which regions the experts send back once (seeded, so re-runs agree)."""
    return random.Random(f"{seed}:{programme}:{region}:review").random() < share


@flow(name="stage", task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
def stage_flow(db_url: str, programme: str, stage: str, simulate: bool = False,
               seed: int = 0) -> list[dict[str, Any]]:
    """For every region of ``programme``: open ``stage``, check each pillar's gate, complete
    it where it passes, and report per region what is missing where it does not."""
    regions = [p.region_code for p in engine_for(db_url).plans(programme)]
    return [f.result() for f in advance_region.map(db_url, programme, regions, stage,
                                                   simulate, seed)]


@flow(name="programme", task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
def programme_flow(db_url: str, programme: str, simulate: bool = True, seed: int = 0,
                   return_share: float = 0.2) -> dict[str, Any]:
    """Rehearse a cohort's year: every region, in parallel, from enrolment through bimtek
    I-IV, review and the regent's approval, one task per region (``run_region``).

    A region whose gate does not pass stays at that stage and is reported; the others go on.
    With ``simulate`` the regions' officers are simulated (the demo). One task per region
    rather than per stage: Prefect's own cost per task run (~10 ms of client and server
    work on two cores) was more than the engine's work in a stage, and a stage of one
    region is neither retried nor watched on its own in a rehearsal (the stage flow does
    that)."""
    state = engine_for(db_url).programme(programme)
    regions = list(state.region_codes)
    returns = [returned_by_review(programme, r, seed, return_share) for r in regions]
    outcomes = [f.result() for f in run_region.map(db_url, programme, regions, simulate, seed,
                                                   returns, state.year)]
    return {"approved": [o["region"] for o in outcomes if o["approved"]],
            "blocked": {o["region"]: o["blocked"] for o in outcomes if not o["approved"]}}


@flow(name="report")
def report_flow(db_url: str, programme: str) -> dict[str, Any]:
    """The cohort progress summary: stage per region, forms per pillar, quick wins."""
    return cohort_report(engine_for(db_url), programme)
