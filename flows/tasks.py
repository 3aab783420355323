"""Prefect tasks: engine operations for one region, retried on transient errors.

Retries are safe: every command id is built from business inputs (engine.operations), so
a retried task that had already recorded its command writes nothing again. For the same
reason the tasks are never cached by Prefect (``NO_CACHE``, results not persisted): the
event store, not a task's inputs, says what is done.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import OperationalError

from engine import operations as ops
from engine.application import Engine
from engine.domain.plan import BIMTEK_STAGES
from engine.errors import ConcurrencyError, NotFound
from flows.runtime import engine_for

RETRIES = 3
# What every task of the cohort flows shares: retried on transient errors only, never cached.
TASK_OPTIONS: dict[str, Any] = {"retries": RETRIES, "retry_delay_seconds": 0.2,
                                "cache_policy": NO_CACHE, "persist_result": False}


def transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry conflicts and database hiccups; never retry a refused command."""
    try:
        state.result()
    except (ConcurrencyError, OperationalError, ConnectionError, TimeoutError):
        return True
    except Exception:
        return False
    return False


def advance(eng: Engine, programme: str, region: str, stage: str, simulate: bool,
            seed: int) -> dict[str, Any]:
    """Open ``stage``, (in a rehearsal, fill its forms as the region would), then complete
    it where every pillar's gate passes; says what is missing otherwise."""
    ops.open_stage(eng, programme, region, stage)
    if simulate:
        ops.fill_stage(eng, programme, region, stage, seed)
    outcome = ops.close_stage(eng, programme, region, stage)
    return {"region": region, "stage": stage, "completed": outcome.completed,
            "missing": outcome.missing}


@task(name="advance-region", retry_condition_fn=transient, task_run_name="{stage}-{region}",
      **TASK_OPTIONS)
def advance_region(db_url: str, programme: str, region: str, stage: str, simulate: bool,
                   seed: int) -> dict[str, Any]:
    """One bimtek stage for one region (see :func:`advance`)."""
    return advance(engine_for(db_url), programme, region, stage, simulate, seed)


@task(name="run-region", retry_condition_fn=transient, task_run_name="programme-{region}",
      **TASK_OPTIONS)
def run_region(db_url: str, programme: str, region: str, simulate: bool, seed: int,
               return_first: bool, year: int) -> dict[str, Any]:
    """One region's year: enrol it, take it through bimtek I-IV, the experts' review
    (returned once with a finding when ``return_first``) and the regent's approval.

    Stops at the first stage whose gate does not pass and returns that stage's outcome as
    ``blocked``. A retry starts again from enrolment and skips what is recorded."""
    eng = engine_for(db_url)
    try:
        eng.plan(programme, region)
    except NotFound:
        ops.enrol(eng, programme, region)
    stages = []
    for stage in BIMTEK_STAGES:
        outcome = advance(eng, programme, region, stage, simulate, seed)
        stages.append(outcome)
        if not outcome["completed"]:
            return {"region": region, "approved": False, "blocked": outcome, "stages": stages}
    ops.review(eng, programme, region, return_first=return_first, seed=seed)
    ops.approve(eng, programme, region, year)
    return {"region": region, "approved": True, "blocked": None, "stages": stages}
