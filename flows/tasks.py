"""Prefect tasks: each one engine operation for one region, retried on transient errors.

Retries are safe: every command id is built from business inputs (engine.operations), so
a retried task that had already recorded its command writes nothing again.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from sqlalchemy.exc import OperationalError

from engine import operations as ops
from engine.errors import ConcurrencyError
from flows.runtime import engine_for

RETRIES = 3


def transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry conflicts and database hiccups; never retry a refused command."""
    try:
        state.result()
    except (ConcurrencyError, OperationalError, ConnectionError, TimeoutError):
        return True
    except Exception:
        return False
    return False


@task(name="enrol-region", retries=RETRIES, retry_delay_seconds=0.2, retry_condition_fn=transient)
def enrol_region(db_url: str, programme: str, region: str) -> str:
    eng = engine_for(db_url)
    try:
        eng.plan(programme, region)
    except Exception:  # noqa: BLE001 - not enrolled yet
        ops.enrol(eng, programme, region)
    return region


@task(name="advance-region", retries=RETRIES, retry_delay_seconds=0.2,
      retry_condition_fn=transient, task_run_name="{stage}-{region}")
def advance_region(db_url: str, programme: str, region: str, stage: str, simulate: bool,
                   seed: int) -> dict[str, Any]:
    """Open ``stage``, (in the demo, fill its forms as the region would), then complete it
    where every pillar's gate passes; returns what is missing otherwise."""
    eng = engine_for(db_url)
    ops.open_stage(eng, programme, region, stage)
    if simulate:
        ops.fill_stage(eng, programme, region, stage, seed)
    outcome = ops.close_stage(eng, programme, region, stage)
    return {"region": region, "stage": stage, "completed": outcome.completed,
            "missing": outcome.missing}


@task(name="review-region", retries=RETRIES, retry_delay_seconds=0.2,
      retry_condition_fn=transient, task_run_name="review-{region}")
def review_region(db_url: str, programme: str, region: str, return_first: bool,
                  seed: int) -> str:
    return ops.review(engine_for(db_url), programme, region, return_first=return_first,
                      seed=seed)


@task(name="approve-region", retries=RETRIES, retry_delay_seconds=0.2,
      retry_condition_fn=transient, task_run_name="approve-{region}")
def approve_region(db_url: str, programme: str, region: str, year: int) -> str:
    ops.approve(engine_for(db_url), programme, region, year)
    return region
