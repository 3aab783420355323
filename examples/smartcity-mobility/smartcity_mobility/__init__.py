"""Smart mobility (Mobilitas Cerdas): a seventh pillar, written as an outside plugin.

Public transport, traffic management and non-motorised transport. The module itself is the
plugin: its functions marked ``@hookimpl`` are the hook implementations, and the
``smartcity.pillars`` entry point ``mobility = "smartcity_mobility"`` names it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine import hookimpl
from engine.domain.plan import PlanState
from engine.errors import FieldError
from engine.pillars import FormSpec, IndicatorSpec, PillarSpec
from smartcity_mobility.forms import FORMS
from smartcity_mobility.indicators import INDICATORS, PILLAR, PILLAR_ID
from smartcity_mobility.rules import RULES, missing_for

__version__ = "0.1.0"


@hookimpl
def register_pillars(register: Callable[[PillarSpec], None]) -> None:
    register(PILLAR)


@hookimpl
def register_indicators(register: Callable[[IndicatorSpec], None]) -> None:
    for indicator in INDICATORS.values():
        register(indicator)


@hookimpl
def register_forms(register: Callable[[FormSpec], None]) -> None:
    for spec in FORMS:
        register(spec)


@hookimpl
def validate_form(pillar: str, stage: str, form: str, data: dict[str, Any],
                  plan: PlanState) -> list[FieldError] | None:
    if pillar != PILLAR_ID or form not in RULES:
        return None
    return [FieldError(e.field, e.message, pillar=PILLAR_ID, form=form, fix=e.fix)
            for e in RULES[form](data, plan)]


@hookimpl
def stage_gate(pillar: str, stage: str, plan: PlanState) -> list[str] | None:
    if pillar != PILLAR_ID:
        return None
    return missing_for(stage, plan)
