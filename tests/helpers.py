"""Test helpers: drive a plan to a stage through the real engine."""

from __future__ import annotations

from engine import operations as ops
from engine.domain.plan import BIMTEK_STAGES
from engine.errors import NotFound


def advance_to(engine, operator, programme: str, region: str, stage: str,  # type: ignore[no-untyped-def]
               *, year: int = 2023, seed: int = 1) -> None:
    """Create the programme if needed, enrol ``region`` and complete every bimtek stage
    before ``stage``, then open ``stage`` and fill its forms (not completed)."""
    try:
        programme_state = engine.programme(programme)
        if region not in programme_state.region_codes:
            engine.add_region(operator, programme, region)
    except NotFound:
        engine.create_programme(operator, programme, f"Programme {programme}", year, [region])
    try:
        engine.plan(programme, region)
    except NotFound:
        ops.enrol(engine, programme, region)
    for s in BIMTEK_STAGES:
        ops.open_stage(engine, programme, region, s)
        ops.fill_stage(engine, programme, region, s, seed)
        if s == stage:
            return
        outcome = ops.close_stage(engine, programme, region, s)
        assert outcome.completed, outcome.missing
