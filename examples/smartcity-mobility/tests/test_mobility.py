"""The mobility pillar: the engine's conformance kit, then its own rules and gates."""

from __future__ import annotations

import importlib
import random
from typing import Any, get_args

import pytest

from engine.domain import plan as P
from engine.errors import FieldError, ValidationError
from engine.pillars import BUILTIN_ORDER, PillarRegistry, load_registry
from engine.testing import check_pillar_plugin, pillar_plugin_problems

import smartcity_mobility
from smartcity_mobility.forms import (
    Element,
    example_baseline,
    example_candidates,
    example_implementation,
    example_targets,
)
from smartcity_mobility.indicators import INDICATORS, PILLAR, derived_baseline


def test_conforms_to_the_pillar_contract() -> None:
    check_pillar_plugin(smartcity_mobility, name="mobility", seeds=range(10))


def test_conforms_next_to_the_six_builtin_pillars() -> None:
    builtins = [(n, importlib.import_module(f"plugins.{n}").PILLAR) for n in BUILTIN_ORDER]
    assert pillar_plugin_problems(smartcity_mobility, name="mobility", alongside=builtins) == []


# ---------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def registry() -> PillarRegistry:
    return load_registry([("mobility", smartcity_mobility)], entrypoints=False)


def enrolled() -> P.PlanState:
    return P.evolve(None, P.PlanEnrolled(
        programme_id="m100-2023", region_code="35.76", region_name="Kota Mojokerto",
        region_kind="kota", head_title="Walikota", pillars=("mobility",), programme_year=2023))


def submit(registry: PillarRegistry, plan: P.PlanState, stage: str, form: str,
           data: dict[str, Any]) -> P.PlanState:
    """Validate through the registry (model and rules), then record it as the engine does."""
    if plan.stage != stage:
        plan = P.evolve(plan, P.StageStarted.model_validate({"stage": stage}))
    clean = registry.validate_form("mobility", stage, form, data, plan)
    return P.evolve(plan, P.FormSubmitted.model_validate(
        {"pillar": "mobility", "stage": stage, "form": form, "data": clean}))


def refused(registry: PillarRegistry, plan: P.PlanState, stage: str, form: str,
            data: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(ValidationError) as info:
        submit(registry, plan, stage, form, data)
    assert all((e.pillar, e.form) == ("mobility", form) for e in info.value.errors)
    return info.value.errors


def propose(plan: P.PlanState, candidates: dict[str, Any]) -> P.PlanState:
    for c in candidates["candidates"]:
        plan = P.evolve(plan, P.QuickWinProposed(quick_win_id=c["quick_win_id"],
                                                 pillar="mobility", name=c["name"],
                                                 agency=c["agency"]))
    return plan


def through_bimtek_2(registry: PillarRegistry, rng: random.Random) -> P.PlanState:
    plan = submit(registry, enrolled(), "bimtek_1", "transport_baseline",
                  example_baseline(enrolled(), rng))
    candidates = example_candidates(plan, rng)
    return propose(submit(registry, plan, "bimtek_2", "quick_win_candidates", candidates),
                   candidates)


# ---------------------------------------------------------------------- rules
def test_baseline_refuses_more_adaptive_than_signalised(registry: PillarRegistry) -> None:
    data = example_baseline(enrolled(), random.Random(1))
    data.update(signalised_intersections=10, adaptive_intersections=12)
    [err] = refused(registry, enrolled(), "bimtek_1", "transport_baseline", data)
    assert err.field == "adaptive_intersections" and err.fix


def test_baseline_year_may_not_follow_the_programme_year(registry: PillarRegistry) -> None:
    data = {**example_baseline(enrolled(), random.Random(2)), "year": 2024}
    [err] = refused(registry, enrolled(), "bimtek_1", "transport_baseline", data)
    assert err.field == "year" and "2023" in err.message


def test_candidate_indicator_must_measure_its_element(registry: PillarRegistry) -> None:
    plan = submit(registry, enrolled(), "bimtek_1", "transport_baseline",
                  example_baseline(enrolled(), random.Random(3)))
    data = example_candidates(plan, random.Random(3))
    data["candidates"] = data["candidates"][:1]
    data["candidates"][0].update(element="non_motorised", indicator="MOB-07")
    [err] = refused(registry, plan, "bimtek_2", "quick_win_candidates", data)
    assert err.field == "candidates[0].indicator" and "traffic_management" in err.message


def test_candidate_id_taken_by_another_pillar_is_refused(registry: PillarRegistry) -> None:
    plan = submit(registry, enrolled(), "bimtek_1", "transport_baseline",
                  example_baseline(enrolled(), random.Random(4)))
    plan = P.evolve(plan, P.StageStarted(stage="bimtek_2"))
    plan = P.evolve(plan, P.QuickWinProposed(quick_win_id="MOB-QW1", pillar="living",
                                             name="Langsat Manis", agency="DISHUB"))
    data = example_candidates(plan, random.Random(4))
    errors = refused(registry, plan, "bimtek_2", "quick_win_candidates", data)
    assert [e.field for e in errors] == ["candidates[0].quick_win_id"]
    assert "living" in errors[0].message


def test_targets_baseline_must_match_the_bimtek_1_figures(registry: PillarRegistry) -> None:
    plan = through_bimtek_2(registry, random.Random(5))
    data = example_targets(plan, random.Random(5))
    data["targets"] = [{"indicator": "MOB-03", "baseline": "999.99", "target_1y": "1000.00",
                        "target_5y": "1001.00", "target_10y": "1002.00"}]
    [err] = refused(registry, plan, "bimtek_3", "mobility_targets", data)
    expected = derived_baseline(plan, "MOB-03")
    assert err.field == "targets[0].baseline" and err.fix == f"use {expected}"


def test_targets_may_not_get_worse(registry: PillarRegistry) -> None:
    plan = through_bimtek_2(registry, random.Random(6))
    assert INDICATORS["MOB-05"].direction == "higher" and INDICATORS["MOB-07"].direction == "lower"
    fatalities = derived_baseline(plan, "MOB-07")
    assert fatalities is not None
    data = {"targets": [
        {"indicator": "MOB-05", "baseline": "40.00", "target_1y": "50.00", "target_5y": "45.00",
         "target_10y": "120.00"},
        {"indicator": "MOB-07", "baseline": str(fatalities), "target_1y": str(fatalities),
         "target_5y": str(fatalities + 1), "target_10y": "0.00"}]}
    errors = refused(registry, plan, "bimtek_3", "mobility_targets", data)
    assert [e.field for e in errors] == ["targets[0].target_5y", "targets[0].target_10y",
                                         "targets[1].target_5y"]


def test_steps_must_deliver_a_mobility_quick_win_within_12_months(registry: PillarRegistry) -> None:
    plan = through_bimtek_2(registry, random.Random(7))
    plan = submit(registry, plan, "bimtek_3", "mobility_targets",
                  example_targets(plan, random.Random(7)))
    data = {"steps": [{"step_id": "S1", "quick_win_id": "GOV-QW1", "agency": "DISHUB",
                       "start": "2024-01-01", "end": "2025-06-30", "budget_idr": 1,
                       "milestone": "Bus beroperasi"}]}
    errors = refused(registry, plan, "bimtek_4", "implementation_plan", data)
    assert [e.field for e in errors] == ["steps[0].quick_win_id", "steps[0].end"]


# ---------------------------------------------------------------------- gates
def test_gates_name_what_each_stage_still_needs(registry: PillarRegistry) -> None:
    rng = random.Random(8)
    plan = submit(registry, enrolled(), "bimtek_1", "transport_baseline",
                  example_baseline(enrolled(), rng))
    assert registry.gate(plan, "bimtek_1") == {"mobility": []}
    candidates = example_candidates(plan, rng)
    plan = submit(registry, plan, "bimtek_2", "quick_win_candidates", candidates)
    first = candidates["candidates"][0]["quick_win_id"]
    assert any(first in m for m in registry.gate(plan, "bimtek_2")["mobility"])
    plan = propose(plan, candidates)
    assert registry.gate(plan, "bimtek_2") == {"mobility": []}
    plan = P.evolve(plan, P.StageStarted(stage="bimtek_3"))
    missing = registry.gate(plan, "bimtek_3")["mobility"]
    assert missing[0] == "form mobility_targets"
    assert any(candidates["candidates"][0]["indicator"] in m for m in missing[1:])
    plan = submit(registry, plan, "bimtek_3", "mobility_targets", example_targets(plan, rng))
    assert registry.gate(plan, "bimtek_3") == {"mobility": []}
    plan = P.evolve(plan, P.StageStarted(stage="bimtek_4"))
    assert (f"an implementation step for quick win {first} in implementation_plan"
            in registry.gate(plan, "bimtek_4")["mobility"])
    plan = submit(registry, plan, "bimtek_4", "implementation_plan",
                  example_implementation(plan, rng))
    assert registry.gate(plan, "bimtek_4") == {"mobility": []}


def test_hooks_leave_other_pillars_alone() -> None:
    plan = enrolled()
    assert smartcity_mobility.validate_form("living", "bimtek_1", "readiness", {}, plan) is None
    assert smartcity_mobility.stage_gate("living", "bimtek_2", plan) is None


def test_form_elements_are_the_pillars_elements() -> None:
    assert get_args(Element) == tuple(e.id for e in PILLAR.elements)
