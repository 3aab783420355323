"""The expert team's rules on the pillar forms, and what the engine does with bad input.

1. A table of cases: every ``rule_*`` of engine/forms.py and of each pillar plugin, with
   inputs it accepts and inputs it rejects; a rejection must name the pillar, the form, the
   exact field path and carry a fix. A meta-test fails when a rule has no case.
2. Hypothesis properties over every form of every pillar: examples from engine/examples.py
   (and the plugins' own) pass; mutated examples and arbitrary JSON-ish data are either
   accepted as storable data or refused with a ValidationError of field-level errors, never
   another exception.
3. End to end through Engine.execute: an invalid submission is refused and nothing is written.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import forms
from engine import operations as ops
from engine.application import Engine
from engine.chain import canonical_json
from engine.domain.plan import (
    BIMTEK_STAGES,
    FormSubmitted,
    PlanEnrolled,
    PlanState,
    QuickWinProposed,
    evolve,
    form_key,
    plan_stream,
)
from engine.errors import FieldError, ValidationError
from engine.examples import PILLAR_AGENCIES
from engine.pillars import BUILTIN_ORDER, FormSpec, PillarRegistry, load_registry
from engine.roles import Actor
from tests.helpers import advance_to

PILLARS: tuple[str, ...] = BUILTIN_ORDER
YEAR = 2023
PROGRAMME = "m100-2023"
REGION = "35.02"  # Kabupaten Ponorogo

# The registry the property tests sample from (the ``registry`` fixture is the same content;
# a module-level one lets pytest parametrize over the forms at collection time).
REGISTRY: PillarRegistry = load_registry(only=BUILTIN_ORDER)
PLUGIN_MODULES: dict[str, ModuleType] = {p: importlib.import_module(f"plugins.{p}")
                                         for p in PILLARS}

# Deterministic, modest property runs: same examples on every machine and in CI.
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

Data = dict[str, Any]


# --------------------------------------------------------------------------- the plan context
def build_context(registry: PillarRegistry, seed: int = 0) -> PlanState:
    """A 2023 plan of Ponorogo with every form of every pillar filled from the examples
    (validated on the way) and the quick-win candidates proposed: what the rules look up."""
    state = evolve(None, PlanEnrolled(programme_id=PROGRAMME, region_code=REGION,
                                      region_name="Kabupaten Ponorogo", region_kind="kabupaten",
                                      head_title="Bupati", pillars=PILLARS, programme_year=YEAR))
    rng = random.Random(seed)
    for stage in BIMTEK_STAGES:
        for pillar in PILLARS:
            for spec in registry.forms_for(pillar, stage):
                assert spec.example is not None
                clean = registry.validate_form(pillar, stage, spec.form,
                                               spec.example(state, rng), state)
                state = evolve(state, FormSubmitted(pillar=pillar, stage=stage, form=spec.form,
                                                    data=clean))
                if spec.form == "quick_win_candidates":
                    for c in clean["candidates"]:
                        state = evolve(state, QuickWinProposed(
                            quick_win_id=c["quick_win_id"], pillar=pillar, name=c["name"],
                            agency=c["agency"]))
    return state


CONTEXT: PlanState = build_context(REGISTRY)


def context_data(pillar: str, form: str) -> Data:
    """A copy of the valid data the context plan holds for this pillar's form."""
    entry = CONTEXT.form(spec_of(pillar, form).stage, pillar, form)
    assert entry is not None
    return copy.deepcopy(entry.data)


def spec_of(pillar: str, form: str) -> FormSpec:
    [spec] = [s for (p, _, f), s in REGISTRY.forms.items() if p == pillar and f == form]
    return spec


def without_form(plan: PlanState, stage: str, pillar: str, form: str) -> PlanState:
    forms_left = {k: v for k, v in plan.forms.items() if k != form_key(stage, pillar, form)}
    return PlanState(**{**{f: getattr(plan, f) for f in plan.__dataclass_fields__},
                        "forms": forms_left})


# --------------------------------------------------------------------------- path helpers
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _tokens(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _TOKEN.findall(path)]


def set_path(data: Any, path: str, value: Any) -> None:
    *parents, last = _tokens(path)
    for token in parents:
        data = data[token]
    data[last] = value


def get_path(data: Any, path: str) -> Any:
    for token in _tokens(path):
        data = data[token]
    return data


# A change edits a copy of valid data in place; it may look at the plan and the pillar.
Change = Callable[[Data, PlanState, str], None]
Computed = Callable[[Data, PlanState, str], Any]


def put(assignments: dict[str, Any]) -> Change:
    """Set each path to its value; a callable value is computed from (data, plan, pillar)."""
    def change(data: Data, plan: PlanState, pillar: str) -> None:
        for path, value in assignments.items():
            set_path(data, path, value(data, plan, pillar) if callable(value) else value)
    return change


def twice(list_path: str) -> Change:
    """Keep only the list's first item, listed twice."""
    def change(data: Data, plan: PlanState, pillar: str) -> None:
        first = get_path(data, list_path)[0]
        set_path(data, list_path, [first, copy.deepcopy(first)])
    return change


def then(*changes: Change) -> Change:
    def change(data: Data, plan: PlanState, pillar: str) -> None:
        for c in changes:
            c(data, plan, pillar)
    return change


def unchanged(data: Data, plan: PlanState, pillar: str) -> None:
    return None


def copy_from(path: str) -> Computed:
    return lambda data, plan, pillar: get_path(data, path)


def swot_without(kind: str) -> Change:
    """Relabel every item with the three other kinds (the list keeps its >= 4 items)."""
    others = [k for k in ("strength", "weakness", "opportunity", "threat") if k != kind]

    def change(data: Data, plan: PlanState, pillar: str) -> None:
        for n, item in enumerate(data["items"]):
            item["kind"] = others[n % 3]
    return change


def roadmap(*horizon_years: tuple[int, int]) -> Change:
    """Replace the road map by items of these (horizon, year offset from the plan year)."""
    def change(data: Data, plan: PlanState, pillar: str) -> None:
        template = data["items"][0]
        data["items"] = [{**template, "horizon": h, "year": plan.programme_year + offset}
                         for h, offset in horizon_years]
    return change


def quick_win_of(other: bool) -> Computed:
    def pick(data: Data, plan: PlanState, pillar: str) -> str:
        return sorted(q.quick_win_id for q in plan.quick_wins.values()
                      if (q.pillar != pillar) == other)[0]
    return pick


def programme_of(data: Data, plan: PlanState, pillar: str) -> str:
    entry = plan.form("bimtek_2", pillar, "innovation_programmes")
    assert entry is not None
    return str(entry.data["programmes"][-1]["id"])


def indicator_of(other: bool) -> Computed:
    def pick(data: Data, plan: PlanState, pillar: str) -> str:
        owner = PILLARS[(PILLARS.index(pillar) + 1) % len(PILLARS)] if other else pillar
        return REGISTRY.indicators_of(owner)[0].id
    return pick


def all_swot_ids(data: Data, plan: PlanState, pillar: str) -> list[str]:
    entry = plan.form("bimtek_1", pillar, "swot")
    assert entry is not None
    return [i["id"] for i in entry.data["items"]]


def on(offset: int, month_day: str) -> Computed:
    """An ISO date ``offset`` years from the plan's year: on(1, '03-01') -> '2024-03-01'."""
    return lambda data, plan, pillar: f"{plan.programme_year + offset}-{month_day}"


def year(offset: int) -> Computed:
    return lambda data, plan, pillar: plan.programme_year + offset


# --------------------------------------------------------------------------- the rule cases
@dataclass(frozen=True)
class Case:
    """One input for one rule: accepted when ``field`` is None, else rejected naming it."""

    name: str
    rule: Callable[..., list[FieldError]]
    form: str
    change: Change
    field: str | None = None
    message: str = ""  # a fragment the rejection's message must contain
    pillars: tuple[str, ...] = PILLARS
    plan: Callable[[PlanState, str], PlanState] | None = None  # (plan, pillar) -> plan

    @property
    def accepted(self) -> bool:
        return self.field is None


def ok(name: str, rule: Callable[..., list[FieldError]], form: str, change: Change = unchanged,
       **kw: Any) -> Case:
    return Case(name, rule, form, change, None, **kw)


def bad(name: str, rule: Callable[..., list[FieldError]], form: str, field: str, change: Change,
        **kw: Any) -> Case:
    return Case(name, rule, form, change, field, **kw)


AREAS = ("structure", "infrastructure", "superstructure")
F = forms
gov, bra, eco = (PLUGIN_MODULES[p] for p in ("governance", "branding", "economy"))
liv, soc, env = (PLUGIN_MODULES[p] for p in ("living", "society", "environment"))

CASES: list[Case] = [
    # ---- readiness: level 4 (integrated) or 5 (smart) needs evidence
    ok("levels-1-to-3-need-no-evidence", F.rule_readiness, "readiness",
       put({f"{a}.{k}": v for a in AREAS for k, v in (("level", 3), ("evidence", []))})),
    ok("level-5-with-evidence", F.rule_readiness, "readiness",
       put({f"{a}.{k}": v for a in AREAS
            for k, v in (("level", 5), ("evidence", ["Perbup No. 12 Tahun 2022"]))})),
    *[bad(f"{a}-level-{lvl}-without-evidence", F.rule_readiness, "readiness", f"{a}.evidence",
          put({f"{a}.level": lvl, f"{a}.evidence": []}), message=f"level {lvl}")
      for a in AREAS for lvl in (4, 5)],
    # ---- swot: distinct ids, all four kinds, known agencies
    ok("example-swot", F.rule_swot, "swot"),
    ok("agency-code-in-lower-case-is-normalised", F.rule_swot, "swot",
       put({"items[0].agency": "diskominfo"})),
    bad("repeated-item-id", F.rule_swot, "swot", "items[1].id",
        put({"items[1].id": copy_from("items[0].id")}), message="more than once"),
    *[bad(f"no-{kind}", F.rule_swot, "swot", "items", swot_without(kind), message=f"no {kind}")
      for kind in ("strength", "weakness", "opportunity", "threat")],
    bad("unknown-agency", F.rule_swot, "swot", "items[0].agency",
        put({"items[0].agency": "DINAS_FIKTIF"}), message="not a known agency"),
    # ---- innovation programmes: distinct ids, known agencies, refs into the pillar's SWOT
    ok("example-programmes", F.rule_programmes, "innovation_programmes"),
    ok("refs-to-every-swot-item", F.rule_programmes, "innovation_programmes",
       put({"programmes[0].swot_refs": all_swot_ids})),
    bad("repeated-programme-id", F.rule_programmes, "innovation_programmes", "programmes[1].id",
        put({"programmes[1].id": copy_from("programmes[0].id")})),
    bad("unknown-agency", F.rule_programmes, "innovation_programmes", "programmes[0].agency",
        put({"programmes[0].agency": "DINAS_FIKTIF"})),
    bad("swot-ref-not-in-swot", F.rule_programmes, "innovation_programmes",
        "programmes[0].swot_refs", put({"programmes[0].swot_refs": ["X99"]}),
        message="'X99' is not an item"),
    bad("no-swot-submitted", F.rule_programmes, "innovation_programmes",
        "programmes[0].swot_refs", unchanged,
        plan=lambda plan, pillar: without_form(plan, "bimtek_1", pillar, "swot")),
    # ---- quick-win candidates: distinct, doable in 12 months, from a programme of the pillar
    ok("example-candidates", F.rule_candidates, "quick_win_candidates"),
    ok("refers-to-another-programme", F.rule_candidates, "quick_win_candidates",
       put({"candidates[0].programme_ref": programme_of})),
    bad("repeated-quick-win-id", F.rule_candidates, "quick_win_candidates",
        "candidates[1].quick_win_id", twice("candidates")),
    bad("unknown-agency", F.rule_candidates, "quick_win_candidates", "candidates[0].agency",
        put({"candidates[0].agency": "DINAS_FIKTIF"})),
    bad("not-doable-within-12-months", F.rule_candidates, "quick_win_candidates",
        "candidates[0].doable_within_12_months",
        put({"candidates[0].doable_within_12_months": False}), message="12 months"),
    bad("programme-ref-unknown", F.rule_candidates, "quick_win_candidates",
        "candidates[0].programme_ref", put({"candidates[0].programme_ref": "P99"})),
    bad("no-programmes-submitted", F.rule_candidates, "quick_win_candidates",
        "candidates[0].programme_ref", unchanged,
        plan=lambda plan, pillar: without_form(plan, "bimtek_2", pillar,
                                               "innovation_programmes")),
    # ---- quick-win profiles: proposed quick wins of the pillar, its indicators, mitigations
    ok("example-profiles", F.rule_profiles, "quick_win_profiles"),
    ok("indicator-of-the-pillar", F.rule_profiles, "quick_win_profiles",
       put({"profiles[0].output_indicator": indicator_of(other=False)})),
    ok("risk-4x3-needs-no-mitigation", F.rule_profiles, "quick_win_profiles",
       put({"profiles[0].risks[0].likelihood": 4, "profiles[0].risks[0].impact": 3,
            "profiles[0].risks[0].mitigation": ""})),
    ok("risk-5x3-with-mitigation", F.rule_profiles, "quick_win_profiles",
       put({"profiles[0].risks[0].likelihood": 5, "profiles[0].risks[0].impact": 3,
            "profiles[0].risks[0].mitigation": "Pengadaan dimulai triwulan I"})),
    bad("repeated-quick-win", F.rule_profiles, "quick_win_profiles",
        "profiles[1].quick_win_id", twice("profiles")),
    bad("quick-win-never-proposed", F.rule_profiles, "quick_win_profiles",
        "profiles[0].quick_win_id", put({"profiles[0].quick_win_id": "QW-404"}),
        message="not a proposed quick win"),
    bad("quick-win-of-another-pillar", F.rule_profiles, "quick_win_profiles",
        "profiles[0].quick_win_id", put({"profiles[0].quick_win_id": quick_win_of(other=True)})),
    bad("indicator-of-another-pillar", F.rule_profiles, "quick_win_profiles",
        "profiles[0].output_indicator",
        put({"profiles[0].output_indicator": indicator_of(other=True)})),
    *[bad(f"risk-{li}x{im}-without-mitigation", F.rule_profiles, "quick_win_profiles",
          "profiles[0].risks[0].mitigation",
          put({"profiles[0].risks[0].likelihood": li, "profiles[0].risks[0].impact": im,
               "profiles[0].risks[0].mitigation": blank}), message=f"={li * im}")
      for li, im, blank in ((5, 3, ""), (3, 5, "   "), (5, 5, ""))],
    # ---- roadmap: 1-, 5- and 10-year items, each year inside its horizon, known programmes
    ok("example-roadmap", F.rule_roadmap, "roadmap"),
    ok("last-year-of-each-horizon", F.rule_roadmap, "roadmap", roadmap((1, 1), (5, 5), (10, 10))),
    ok("first-year-for-every-horizon", F.rule_roadmap, "roadmap",
       roadmap((1, 1), (5, 1), (10, 1))),
    *[bad(f"no-{h}-year-item", F.rule_roadmap, "roadmap", "items",
          roadmap(*[(k, 1) for k in (1, 5, 10) if k != h], (1 if h != 1 else 5, 1)),
          message=f"no {h}-year item") for h in (1, 5, 10)],
    bad("1-year-item-two-years-out", F.rule_roadmap, "roadmap", "items[0].year",
        roadmap((1, 2), (5, 5), (10, 10)), message="outside the 1-year horizon"),
    bad("item-in-the-plan-year-itself", F.rule_roadmap, "roadmap", "items[2].year",
        roadmap((1, 1), (5, 5), (10, 0))),
    bad("10-year-item-after-the-horizon", F.rule_roadmap, "roadmap", "items[2].year",
        roadmap((1, 1), (5, 5), (10, 11))),
    bad("programme-ref-unknown", F.rule_roadmap, "roadmap", "items[0].programme_ref",
        put({"items[0].programme_ref": "P99"})),
    # ---- implementation steps: distinct, known owner agency, start <= end inside the horizon
    ok("example-steps", F.rule_steps, "implementation_steps"),
    ok("one-day-step", F.rule_steps, "implementation_steps",
       put({"steps[0].start": on(1, "03-01"), "steps[0].end": on(1, "03-01")})),
    ok("starts-in-the-plan-year", F.rule_steps, "implementation_steps",
       put({"steps[0].start": on(0, "01-01"), "steps[0].end": on(0, "12-31")})),
    ok("starts-in-the-last-year-of-the-horizon", F.rule_steps, "implementation_steps",
       put({"steps[0].start": on(10, "12-31"), "steps[0].end": on(11, "06-30")})),
    ok("ref-to-a-quick-win", F.rule_steps, "implementation_steps",
       put({"steps[0].ref": quick_win_of(other=False)})),
    ok("ref-to-a-programme", F.rule_steps, "implementation_steps",
       put({"steps[0].ref": programme_of})),
    bad("repeated-step-id", F.rule_steps, "implementation_steps", "steps[1].step_id",
        twice("steps")),
    bad("unknown-owner-agency", F.rule_steps, "implementation_steps", "steps[0].owner_agency",
        put({"steps[0].owner_agency": "DINAS_FIKTIF"}), message="not a known agency"),
    bad("ends-before-it-starts", F.rule_steps, "implementation_steps", "steps[0].end",
        put({"steps[0].start": on(1, "03-01"), "steps[0].end": on(1, "02-28")}),
        message="before it starts"),
    bad("starts-before-the-plan-year", F.rule_steps, "implementation_steps", "steps[0].start",
        put({"steps[0].start": on(-1, "12-31"), "steps[0].end": on(1, "06-30")}),
        message="outside the plan's horizon"),
    bad("starts-after-the-horizon", F.rule_steps, "implementation_steps", "steps[0].start",
        put({"steps[0].start": on(11, "01-01"), "steps[0].end": on(11, "06-30")})),
    bad("ref-unknown", F.rule_steps, "implementation_steps", "steps[0].ref",
        put({"steps[0].ref": "QW-404"})),
    bad("ref-to-a-quick-win-of-another-pillar", F.rule_steps, "implementation_steps",
        "steps[0].ref", put({"steps[0].ref": quick_win_of(other=True)})),
    # ---- governance: SPBE predicate matches the index band; the evaluation is not future
    ok("example-spbe", gov.rule_spbe, "spbe_assessment", pillars=("governance",)),
    *[ok(f"spbe-{index}-is-{predicate}", gov.rule_spbe, "spbe_assessment",
         put({"spbe_index": index, "predicate": predicate}), pillars=("governance",))
      for index, predicate in (("0", "kurang"), ("1.79", "kurang"), ("1.80", "cukup"),
                               ("2.59", "cukup"), ("2.60", "baik"), ("3.50", "sangat_baik"),
                               ("4.19", "sangat_baik"), ("4.20", "memuaskan"),
                               ("5.00", "memuaskan"))],
    ok("evaluated-in-the-programme-year", gov.rule_spbe, "spbe_assessment",
       put({"year": year(0)}), pillars=("governance",)),
    *[bad(f"spbe-{index}-is-not-{predicate}", gov.rule_spbe, "spbe_assessment", "predicate",
          put({"spbe_index": index, "predicate": predicate}), pillars=("governance",),
          message=f"not {predicate!r}")
      for index, predicate in (("3.50", "baik"), ("1.79", "cukup"), ("5.00", "sangat_baik"))],
    bad("evaluation-after-the-programme-year", gov.rule_spbe, "spbe_assessment", "year",
        put({"year": year(1)}), pillars=("governance",)),
    # ---- branding: known owner agency, no repeated segment, a registered brand's number
    ok("example-brand", bra.rule_city_brand, "city_brand", pillars=("branding",)),
    ok("registered-with-its-number", bra.rule_city_brand, "city_brand",
       put({"trademark_registered": True, "trademark_number": "IDM000912345"}),
       pillars=("branding",)),
    bad("unknown-owner-agency", bra.rule_city_brand, "city_brand", "owner_agency",
        put({"owner_agency": "DINAS_FIKTIF"}), pillars=("branding",)),
    bad("segment-listed-twice", bra.rule_city_brand, "city_brand", "segments",
        put({"segments": ["tourism", "business", "tourism"]}), pillars=("branding",)),
    bad("registered-without-a-number", bra.rule_city_brand, "city_brand", "trademark_number",
        put({"trademark_registered": True, "trademark_number": "  "}), pillars=("branding",)),
    # ---- economy: online MSMEs within all MSMEs; the baseline is not in the future
    ok("example-economic-profile", eco.rule_profile, "economic_profile", pillars=("economy",)),
    ok("every-msme-online", eco.rule_profile, "economic_profile",
       put({"msme_online": copy_from("msme_count"), "year": year(0)}), pillars=("economy",)),
    bad("more-online-than-registered", eco.rule_profile, "economic_profile", "msme_online",
        put({"msme_count": 100, "msme_online": 101}), pillars=("economy",)),
    bad("baseline-after-the-programme-year", eco.rule_profile, "economic_profile", "year",
        put({"year": year(1)}), pillars=("economy",)),
    # ---- living: some health facility; beds only with hospitals
    ok("example-services-baseline", liv.rule_baseline, "services_baseline",
       pillars=("living",)),
    ok("puskesmas-only", liv.rule_baseline, "services_baseline",
       put({"puskesmas": 5, "hospitals": 0, "hospital_beds": 0}), pillars=("living",)),
    bad("no-health-facility", liv.rule_baseline, "services_baseline", "puskesmas",
        put({"puskesmas": 0, "hospitals": 0, "hospital_beds": 0}), pillars=("living",)),
    bad("beds-without-a-hospital", liv.rule_baseline, "services_baseline", "hospital_beds",
        put({"puskesmas": 3, "hospitals": 0, "hospital_beds": 10}), pillars=("living",)),
    # ---- society: known agencies; a complaint channel
    ok("example-channels", soc.rule_channels, "community_channels", pillars=("society",)),
    ok("call-centre-counts-as-complaint-channel", soc.rule_channels, "community_channels",
       put({"channels[0].kind": "call_centre"}), pillars=("society",)),
    bad("unknown-agency", soc.rule_channels, "community_channels", "channels[1].agency",
        put({"channels[1].agency": "DINAS_FIKTIF"}), pillars=("society",)),
    bad("no-complaint-channel", soc.rule_channels, "community_channels", "channels",
        put({"channels[0].kind": "forum"}), pillars=("society",),
        message="no complaint channel"),
    # ---- environment: reduced and handled shares of the same waste
    ok("example-waste-baseline", env.rule_waste, "waste_baseline", pillars=("environment",)),
    ok("reduced-and-handled-make-100", env.rule_waste, "waste_baseline",
       put({"reduced_percent": 30, "handled_percent": 70}), pillars=("environment",)),
    bad("reduced-and-handled-over-100", env.rule_waste, "waste_baseline", "handled_percent",
        put({"reduced_percent": 60, "handled_percent": 41}), pillars=("environment",)),
]


def stage_of(pillar: str, form: str) -> str:
    return spec_of(pillar, form).stage


def case_input(case: Case, pillar: str, plan: PlanState = CONTEXT) -> tuple[Data, PlanState]:
    """The case's data: the pillar's valid submitted form, changed; and the plan to check in."""
    if case.plan is not None:
        plan = case.plan(plan, pillar)
    data = context_data(pillar, case.form)
    case.change(data, plan, pillar)
    return data, plan


def rejection(pillar: str, form: str, data: Any, plan: PlanState) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        REGISTRY.validate_form(pillar, stage_of(pillar, form), form, data, plan)
    return info.value


def assert_names(exc: ValidationError, pillar: str, form: str, field: str,
                 message: str = "") -> FieldError:
    """The rejection has an error on exactly ``field``, naming pillar and form, with a fix."""
    fields = [e.field for e in exc.errors]
    matching = [e for e in exc.errors if e.field == field]
    assert matching, f"no error on {field!r}; errors on {fields}: {exc}"
    for err in matching:
        assert (err.pillar, err.form) == (pillar, form), err
        assert err.fix, f"{err} carries no fix"
        assert message in err.message, err
    return matching[0]


def _case_params() -> list[Any]:
    return [pytest.param(case, pillar, id=f"{case.rule.__name__}-{case.form}-{pillar}-"
                                         f"{'accepts' if case.accepted else 'rejects'}-"
                                         f"{case.name}")
            for case in CASES for pillar in case.pillars]


@pytest.mark.parametrize(("case", "pillar"), _case_params())
def test_rule_case(case: Case, pillar: str) -> None:
    data, plan = case_input(case, pillar)
    if case.accepted:
        clean = REGISTRY.validate_form(pillar, stage_of(pillar, case.form), case.form, data, plan)
        assert isinstance(clean, dict)
        return
    assert case.field is not None
    exc = rejection(pillar, case.form, data, plan)
    assert_names(exc, pillar, case.form, case.field, case.message)
    # the rule is the one that spoke: calling it alone finds the same field
    spec = REGISTRY.pillars[pillar]
    owner = PLUGIN_MODULES[pillar].PILLAR
    assert spec.id == owner.id
    clean = spec_of(pillar, case.form).model.model_validate(data).model_dump(mode="json")
    assert case.field in [e.field for e in case.rule(owner, clean, plan)]


def test_swot_reports_each_repeated_id_and_every_missing_kind() -> None:
    data, plan = context_data("economy", "swot"), CONTEXT
    for item in data["items"]:
        item["kind"] = "strength"
        item["id"] = "S1"
    exc = rejection("economy", "swot", data, plan)
    fields = [e.field for e in exc.errors]
    assert fields.count("items") == 3  # weakness, opportunity and threat are missing
    assert {f"items[{n}].id" for n in range(len(data["items"]))} <= set(fields)


def test_spbe_names_both_a_wrong_predicate_and_a_future_year() -> None:
    data = context_data("governance", "spbe_assessment")
    data.update(spbe_index="3.50", predicate="baik", year=YEAR + 1)
    exc = rejection("governance", "spbe_assessment", data, CONTEXT)
    assert {e.field for e in exc.errors} == {"predicate", "year"}


# --------------------------------------------------------------------------- every rule is covered
def discovered_rules() -> dict[str, Callable[..., Any]]:
    """Every rule_* function of engine/forms.py and the plugins, and every rule wired in."""
    found: dict[str, Callable[..., Any]] = {}
    for module in (forms, *PLUGIN_MODULES.values()):
        for name, fn in vars(module).items():
            if name.startswith("rule_") and inspect.isfunction(fn) \
                    and fn.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = fn
    wired = [r for rules in forms.STANDARD_RULES.values() for r in rules]
    wired += [r for m in PLUGIN_MODULES.values() for rules in m.PILLAR.extra_rules.values()
              for r in rules]
    for fn in wired:
        found.setdefault(f"{fn.__module__}.{fn.__name__}", fn)
    return found


@pytest.mark.parametrize("rule", sorted(discovered_rules()))
def test_every_rule_has_an_accepted_and_a_rejected_case(rule: str) -> None:
    fn = discovered_rules()[rule]
    mine = [c for c in CASES if c.rule is fn]
    assert any(c.accepted for c in mine), f"{rule} has no accepted case in tests/test_rules.py"
    assert any(not c.accepted for c in mine), f"{rule} has no rejected case"


def test_every_rule_is_wired_to_the_forms_it_checks() -> None:
    """A case's form is one its rule actually runs on (else the table tests nothing)."""
    for case in CASES:
        for pillar in case.pillars:
            owner = PLUGIN_MODULES[pillar].PILLAR
            rules = forms.STANDARD_RULES.get(case.form, []) + owner.extra_rules.get(case.form, [])
            assert case.rule in rules, (case.name, pillar)


# --------------------------------------------------------------------------- properties
FORM_KINDS: list[tuple[str, str]] = sorted({(s, f) for (_, s, f) in REGISTRY.forms})


def pillars_with(form: str) -> list[str]:
    return [p for (p, _, f) in REGISTRY.forms if f == form]


def dotted(path: tuple[str | int, ...]) -> str:
    """A path as ValidationError.from_pydantic writes it (``items[0].agency``)."""
    from engine.errors import field_path

    return field_path(path)


def nodes(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], Any]]:
    out = [(path, value)]
    if isinstance(value, dict):
        for k, v in value.items():
            out += nodes(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += nodes(v, path + (i,))
    return out


def replace_at(root: Any, path: tuple[str | int, ...], value: Any) -> None:
    parent = root
    for token in path[:-1]:
        parent = parent[token]
    parent[path[-1]] = value


json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=4),  # surrogates
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                  max_size=4),
    max_leaves=16,
)
ELEMENT_IDS = sorted({e.id for p in REGISTRY.pillars.values() for e in p.elements})
AGENCY_CODES = sorted({a for codes in PILLAR_AGENCIES.values() for a in codes})
# values of the right kind for some field somewhere: they reach the expert rules
plausible_leaves = st.one_of(
    st.integers(-3, 110), st.integers(YEAR - 15, YEAR + 15),
    st.sampled_from([0, 1, 4, 5, 15, 2**53 - 1, 2**53, 2**63, 2**64, -(2**63) - 1]),
    st.sampled_from(AGENCY_CODES + ["dinas_fiktif", "X", "DISKOMINFO "]),
    st.sampled_from(ELEMENT_IDS),
    st.sampled_from(["S1", "W1", "O1", "T1", "P1", "P2", "P99", "GOV-QW1", "ECO-QW1", "QW-404",
                     "GOV-01", "U4SSC-1"]),
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["2023-02-30", "2023-1-1", "20230101", "2023-01-01T00:00:00"]),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["NaN", "sNaN", "-Infinity", "-0.00", "1.795", "1E+3", "4.2", "30.00"]),
    st.sampled_from(["strength", "weakness", "opportunity", "threat", "short", "medium",
                     "long", "complaint", "call_centre", "forum", "kurang", "cukup", "baik",
                     "sangat_baik", "memuaskan", "tourism", "business", "residents"]),
    st.booleans(), st.just(""), st.just("   "), st.none(),
    st.lists(st.text(max_size=5), max_size=2),
)


def example(pillar: str, form: str, seed: int) -> Data:
    spec = spec_of(pillar, form)
    assert spec.example is not None
    return spec.example(CONTEXT, random.Random(seed))


def model_accepts(spec: FormSpec, data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    try:
        spec.model.model_validate(data)
    except pydantic.ValidationError:
        return False
    return True


def check(pillar: str, form: str, data: Any, *, must_fail_at: str | None = None) -> Data | None:
    """The engine's contract for any input: storable clean data, or a ValidationError whose
    errors are all field-level and name the pillar and form; rule errors carry a fix."""
    spec = spec_of(pillar, form)
    shape_ok = model_accepts(spec, data)
    try:
        clean = REGISTRY.validate_form(pillar, spec.stage, form, copy.deepcopy(data), CONTEXT)
    except ValidationError as exc:
        assert exc.errors
        for err in exc.errors:
            assert err.field and err.message, err
            assert (err.pillar, err.form) == (pillar, form), err
            if shape_ok:  # the form's shape was fine: an expert rule spoke, it says how to fix
                assert err.fix, f"rule error without a fix: {err}"
        if must_fail_at is not None:
            assert any(e.field == must_fail_at or e.field.startswith(must_fail_at + ".")
                       for e in exc.errors), (must_fail_at, [e.field for e in exc.errors])
        return None
    assert must_fail_at is None, f"accepted although {must_fail_at!r} is wrong: {data!r}"
    assert shape_ok
    canonical_json(clean)  # storable as it is
    again = REGISTRY.validate_form(pillar, spec.stage, form, copy.deepcopy(clean), CONTEXT)
    assert again == clean  # normalising twice changes nothing
    return clean


def _kinds() -> list[Any]:
    return [pytest.param(stage, form, id=f"{stage}-{form}") for stage, form in FORM_KINDS]


@pytest.mark.parametrize(("stage", "form"), _kinds())
@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_examples_of_every_form_pass(stage: str, form: str, seed: int, data: st.DataObject) -> None:
    pillar = data.draw(st.sampled_from(pillars_with(form)), label="pillar")
    assert check(pillar, form, example(pillar, form, seed)) is not None


MUTATIONS = ("unknown_key", "object_for_value", "drop_key", "json_value", "plausible_value",
             "extreme_number", "empty_list", "repeat_list_item")
extreme_integers = st.one_of(st.integers(), st.integers(min_value=2**52, max_value=2**80),
                             st.integers(min_value=-(2**80), max_value=-(2**52)))


@pytest.mark.parametrize(("stage", "form"), _kinds())
@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_mutated_examples_are_refused_field_by_field(stage: str, form: str, seed: int,
                                                     data: st.DataObject) -> None:
    pillar = data.draw(st.sampled_from(pillars_with(form)), label="pillar")
    value = example(pillar, form, seed)
    mutation = data.draw(st.sampled_from(MUTATIONS), label="mutation")
    all_nodes = nodes(value)
    inner = [(p, v) for p, v in all_nodes if p]
    must_fail_at: str | None = None
    if mutation == "unknown_key":  # extra fields are forbidden at every level
        path, node = data.draw(st.sampled_from([(p, v) for p, v in all_nodes
                                                if isinstance(v, dict)]), label="where")
        node["zz_unexpected"] = 1
        must_fail_at = dotted(path + ("zz_unexpected",))
    elif mutation == "object_for_value":  # no field takes an arbitrary object
        path, _ = data.draw(st.sampled_from(inner), label="where")
        replace_at(value, path, {"zz": "object"})
        must_fail_at = dotted(path)
    elif mutation == "drop_key":
        keyed = [p for p, _ in inner if isinstance(p[-1], str)]
        path = data.draw(st.sampled_from(keyed), label="where")
        parent = value
        for token in path[:-1]:
            parent = parent[token]
        del parent[path[-1]]
    elif mutation == "extreme_number":  # every integer field, at sizes JSON cannot hold
        ints = [p for p, v in inner if isinstance(v, int) and not isinstance(v, bool)]
        if not ints:
            return
        path = data.draw(st.sampled_from(ints), label="where")
        replace_at(value, path, data.draw(extreme_integers, label="value"))
    elif mutation in ("json_value", "plausible_value"):
        path, _ = data.draw(st.sampled_from(inner), label="where")
        new = data.draw(json_values if mutation == "json_value" else plausible_leaves,
                        label="value")
        replace_at(value, path, new)
    else:
        lists = [(p, v) for p, v in all_nodes if isinstance(v, list) and v]
        if not lists:
            return
        path, node = data.draw(st.sampled_from(lists), label="where")
        if mutation == "empty_list":
            node.clear()
        else:
            node.append(copy.deepcopy(node[data.draw(st.integers(0, len(node) - 1))]))
    check(pillar, form, value, must_fail_at=must_fail_at)


@pytest.mark.parametrize(("stage", "form"), _kinds())
@PROPERTY
@given(data=st.data())
def test_arbitrary_json_is_refused_field_by_field(stage: str, form: str,
                                                  data: st.DataObject) -> None:
    pillar = data.draw(st.sampled_from(pillars_with(form)), label="pillar")
    if data.draw(st.booleans(), label="shaped"):
        # the form's own shape with every leaf replaced: deep into the model and the rules
        value: Any = example(pillar, form, data.draw(st.integers(0, 1000), label="seed"))
        for path, leaf in nodes(value):
            if path and not isinstance(leaf, dict | list) and data.draw(st.booleans()):
                replace_at(value, path, data.draw(json_values | plausible_leaves, label=str(path)))
        check(pillar, form, value)
    else:
        value = data.draw(json_values, label="data")
        check(pillar, form, value, must_fail_at=None if isinstance(value, dict) else "data")


@pytest.mark.parametrize("value", [2**53, 2**64, 10**30, -(2**63) - 1],
                         ids=["2**53", "2**64", "10**30", "-2**63-1"])
def test_integers_too_large_for_the_log_are_a_field_error(value: int) -> None:
    """Regression: orjson cannot write integers past 64 bits and JSON readers lose precision
    past 2**53, so the forms refuse them with the field named (was a TypeError)."""
    data = example("living", "services_baseline", 0)
    data["hospital_beds"] = value
    exc = rejection("living", "services_baseline", data, CONTEXT)
    assert [e.field for e in exc.errors] == ["hospital_beds"]
    steps = example("society", "implementation_steps", 0)
    steps["steps"][0]["budget_idr"] = abs(value)
    exc = rejection("society", "implementation_steps", steps, CONTEXT)
    assert [e.field for e in exc.errors] == ["steps[0].budget_idr"]


# --------------------------------------------------------------------------- end to end
def invalid_variants(pillar: str, form: str, valid: Data,
                     plan: PlanState) -> list[tuple[str, Any, str]]:
    """(label, data, field the refusal names) for one form of the live plan."""
    out: list[tuple[str, Any, str]] = []
    for case in CASES:
        if case.form != form or case.accepted or case.plan is not None \
                or pillar not in case.pillars:
            continue
        data = copy.deepcopy(valid)
        case.change(data, plan, pillar)
        assert case.field is not None
        out.append((case.name, data, case.field))
    spec = spec_of(pillar, form)
    required = [n for n, f in spec.model.model_fields.items() if f.is_required()]
    out.append(("missing-field", {k: v for k, v in valid.items() if k != required[0]},
                required[0]))
    out.append(("unknown-field", {**valid, "zz_unexpected": True}, "zz_unexpected"))
    return out


def test_invalid_submissions_are_refused_and_nothing_is_written(engine: Engine,
                                                                operator: Actor) -> None:
    officer = ops.officer_of(REGION)
    stream = plan_stream(PROGRAMME, REGION)
    refused = 0
    for stage in BIMTEK_STAGES:
        advance_to(engine, operator, PROGRAMME, REGION, stage, year=YEAR)
        plan = engine.plan(PROGRAMME, REGION)
        for pillar in plan.pillars:
            for spec in engine.registry.forms_for(pillar, stage):
                entry = plan.form(stage, pillar, spec.form)
                assert entry is not None
                for label, data, field in invalid_variants(pillar, spec.form, entry.data, plan):
                    before = (engine.store.stream_version(stream), engine.store.last_position())
                    with pytest.raises(ValidationError) as info:
                        engine.execute(officer, PROGRAMME, REGION, "SubmitForm",
                                       {"pillar": pillar, "stage": stage, "form": spec.form,
                                        "data": data})
                    errs = info.value.errors
                    assert any(e.field == field for e in errs), (label, [str(e) for e in errs])
                    assert all((e.pillar, e.form) == (pillar, spec.form) for e in errs), label
                    after = (engine.store.stream_version(stream), engine.store.last_position())
                    assert after == before, f"{pillar}.{spec.form} {label} wrote events"
                    assert engine.plan(PROGRAMME, REGION).version == before[0]
                    refused += 1
        # the command itself is malformed: data that is not an object
        before_version = engine.store.stream_version(stream)
        with pytest.raises(ValidationError) as info:
            engine.execute(officer, PROGRAMME, REGION, "SubmitForm",
                           {"pillar": plan.pillars[0], "stage": stage, "form": "readiness",
                            "data": ["not", "an", "object"]})
        assert [e.field for e in info.value.errors] == ["data"]
        assert engine.store.stream_version(stream) == before_version
    assert refused > 200
    # after all the refusals a valid submission still goes through, as exactly one event
    plan = engine.plan(PROGRAMME, REGION)
    entry = plan.form("bimtek_4", "economy", "implementation_steps")
    assert entry is not None
    stored = engine.execute(officer, PROGRAMME, REGION, "SubmitForm",
                            {"pillar": "economy", "stage": "bimtek_4",
                             "form": "implementation_steps", "data": entry.data})
    assert [e.version for e in stored] == [plan.version + 1]


def test_quick_win_commands_refuse_bad_progress_and_unmitigated_risks(engine: Engine,
                                                                      operator: Actor) -> None:
    """Completion is 0-100 and does not go back without a reason; a risk scored
    likelihood x impact >= 15 needs a mitigation. Refusals write nothing."""
    advance_to(engine, operator, PROGRAMME, REGION, "bimtek_3", year=YEAR)
    officer = ops.officer_of(REGION)
    stream = plan_stream(PROGRAMME, REGION)
    plan = engine.plan(PROGRAMME, REGION)
    qw = sorted(plan.quick_wins.values(), key=lambda q: q.quick_win_id)[0]
    assert 1 <= qw.completion_percent <= 99

    def refused(command: str, data: Data, field: str, *, fix: bool) -> None:
        before = (engine.store.stream_version(stream), engine.store.last_position())
        with pytest.raises(ValidationError) as info:
            engine.execute(officer, PROGRAMME, REGION, command, data)
        assert [e.field for e in info.value.errors] == [field], str(info.value)
        if fix:
            assert info.value.errors[0].fix
        assert (engine.store.stream_version(stream), engine.store.last_position()) == before

    def accepted(command: str, data: Data) -> None:
        version = engine.store.stream_version(stream)
        stored = engine.execute(officer, PROGRAMME, REGION, command, data)
        assert [e.version for e in stored] == [version + 1]

    progress = "ReportQuickWinProgress"
    for pct in (-1, 101):
        refused(progress, {"quick_win_id": qw.quick_win_id, "completion_percent": pct},
                "completion_percent", fix=False)
    refused(progress, {"quick_win_id": qw.quick_win_id,
                       "completion_percent": qw.completion_percent - 1}, "reason", fix=True)
    refused(progress, {"quick_win_id": qw.quick_win_id, "completion_percent": 0,
                       "reason": "   "}, "reason", fix=True)
    accepted(progress, {"quick_win_id": qw.quick_win_id,
                        "completion_percent": qw.completion_percent})  # level is not backwards
    accepted(progress, {"quick_win_id": qw.quick_win_id, "completion_percent": 0,
                        "reason": "Pengadaan dibatalkan, diulang tahun depan"})
    accepted(progress, {"quick_win_id": qw.quick_win_id, "completion_percent": 100})

    risk = {"quick_win_id": qw.quick_win_id, "risk_id": "R-ROLE", "description": "Sinyal lemah",
            "handling": "Dipantau bulanan"}
    refused("RecordQuickWinRisk", {**risk, "likelihood": 5, "impact": 3}, "mitigation", fix=False)
    refused("RecordQuickWinRisk", {**risk, "likelihood": 3, "impact": 5, "mitigation": " "},
            "mitigation", fix=False)
    accepted("RecordQuickWinRisk", {**risk, "likelihood": 4, "impact": 3})
    accepted("RecordQuickWinRisk", {**risk, "likelihood": 5, "impact": 5,
                                    "mitigation": "BTS tambahan dari operator"})
