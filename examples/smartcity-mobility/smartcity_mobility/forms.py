"""The mobility pillar's forms, one per bimtek stage, with seeded example content.

Numbers that are not whole are ``Decimal`` (stored as decimal strings): the audit log
refuses floats.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import ConfigDict, Field

from engine.domain.plan import PlanState
from engine.forms import AgencyCode, Form, Ident, Text
from engine.pillars import FormSpec
from smartcity_mobility.indicators import (
    ELEMENTS,
    INDICATORS,
    PILLAR_ID,
    derived_baseline,
    indicators_of,
    is_percent,
)

Element = Literal["public_transport", "traffic_management", "non_motorised"]
Amount = Decimal  # a quantity with at most two decimals, e.g. "12.50"
MAX_QUICK_WINS = 2  # the programme asks for one or two quick wins per pillar


# ------------------------------------------------------------------ bimtek I
class TransportBaseline(Form):
    """Bimtek I: the region's transport in numbers, from the transportation office (Dishub)."""

    model_config = ConfigDict(title="Mobility transport baseline")
    year: int = Field(ge=2010, le=2100, description="year the figures describe")
    population: int = Field(gt=0)
    public_transport_routes: int = Field(ge=0, description="routes served (trayek)")
    public_transport_fleet: int = Field(ge=0, description="vehicles serving those routes")
    annual_public_transport_trips: int = Field(ge=0, description="passenger trips in the year")
    high_capacity_km: Amount = Field(ge=0, decimal_places=1, description="BRT, rail, ...")
    light_passenger_km: Amount = Field(ge=0, decimal_places=1, description="angkot, minibus")
    registered_cars: int = Field(ge=0, description="personal automobiles")
    registered_motorcycles: int = Field(ge=0)
    transport_fatalities: int = Field(ge=0, description="deaths in the year")
    signalised_intersections: int = Field(ge=0)
    adaptive_intersections: int = Field(ge=0, description="under an area traffic control "
                                                          "system (ATCS)")
    bicycle_lanes_km: Amount = Field(ge=0, decimal_places=1)
    has_local_transport_plan: bool = Field(description="a local transport master plan "
                                                       "(Tataran Transportasi Lokal) in force")


# ------------------------------------------------------------------ bimtek II
class Candidate(Form):
    quick_win_id: Ident
    name: Text
    agency: AgencyCode
    element: Element
    indicator: str = Field(description="the mobility indicator (MOB-..) it should move")
    doable_within_12_months: bool
    rationale: Text


class QuickWinCandidates(Form):
    """Bimtek II: one or two mobility quick-win candidates, each tied to an indicator."""

    model_config = ConfigDict(title="Mobility quick-win candidates")
    candidates: list[Candidate] = Field(min_length=1, max_length=MAX_QUICK_WINS)


# ------------------------------------------------------------------ bimtek III
class Target(Form):
    indicator: str
    baseline: Amount = Field(ge=0, decimal_places=2)
    target_1y: Amount = Field(ge=0, decimal_places=2)
    target_5y: Amount = Field(ge=0, decimal_places=2)
    target_10y: Amount = Field(ge=0, decimal_places=2)


class MobilityTargets(Form):
    """Bimtek III: baseline and 1-, 5- and 10-year targets of the mobility indicators."""

    model_config = ConfigDict(title="Mobility indicator targets")
    targets: list[Target] = Field(min_length=1)


# ------------------------------------------------------------------ bimtek IV
class Step(Form):
    step_id: Ident
    quick_win_id: Ident
    agency: AgencyCode
    start: date
    end: date
    budget_idr: int = Field(ge=0, description="rupiah")
    milestone: Text


class ImplementationPlan(Form):
    """Bimtek IV: dated, budgeted steps that deliver each mobility quick win."""

    model_config = ConfigDict(title="Mobility implementation plan")
    steps: list[Step] = Field(min_length=1)


# ------------------------------------------------------------------ examples
# Seeds for generated content. "Langsat Manis" (Kabupaten Tabalong, free public transport)
# and "e-KIR" (Kabupaten Pemalang, cashless roadworthiness tests) are real quick wins listed
# in engine/data/quickwins.csv; the others are descriptive names.
EXAMPLE_QUICK_WINS: dict[str, list[tuple[str, str]]] = {
    "public_transport": [("Langsat Manis", "DISHUB"),
                         ("Informasi kedatangan bus waktu nyata", "DISHUB")],
    "traffic_management": [("e-KIR", "DISHUB"), ("ATCS persimpangan utama", "DISHUB")],
    "non_motorised": [("Jalur sepeda sekolah", "DPUPR"), ("Trotoar ramah difabel", "DPUPR")],
}


def _tenths(rng: random.Random, low: int, high: int) -> str:
    return str(Decimal(rng.randrange(low, high)) / 10)


def example_baseline(plan: PlanState, rng: random.Random) -> dict[str, Any]:
    population = rng.randrange(120_000, 2_500_000)
    routes = rng.randrange(0, 30)
    fleet = routes * rng.randrange(3, 12)
    signalised = rng.randrange(5, 80)
    return {"year": plan.programme_year - 1, "population": population,
            "public_transport_routes": routes, "public_transport_fleet": fleet,
            "annual_public_transport_trips": fleet * rng.randrange(20_000, 60_000),
            "high_capacity_km": _tenths(rng, 0, 300) if rng.random() < 0.2 else "0.0",
            "light_passenger_km": str(Decimal(routes * rng.randrange(80, 250)) / 10),
            "registered_cars": population * rng.randrange(40, 120) // 1000,
            "registered_motorcycles": population * rng.randrange(300, 600) // 1000,
            "transport_fatalities": population * rng.randrange(5, 15) // 100_000,
            "signalised_intersections": signalised,
            "adaptive_intersections": rng.randrange(0, signalised + 1),
            "bicycle_lanes_km": _tenths(rng, 0, 300),
            "has_local_transport_plan": rng.random() < 0.6}


def example_candidates(plan: PlanState, rng: random.Random) -> dict[str, Any]:
    elements = rng.sample(ELEMENTS, k=rng.randint(1, MAX_QUICK_WINS))
    candidates = []
    for n, element in enumerate(elements):
        name, agency = rng.choice(EXAMPLE_QUICK_WINS[element])
        indicator = rng.choice(indicators_of(element))
        candidates.append({"quick_win_id": f"MOB-QW{n + 1}", "name": name, "agency": agency,
                           "element": element, "indicator": indicator.id,
                           "doable_within_12_months": True,
                           "rationale": f"{name} dapat berjalan dalam 12 bulan di "
                                        f"{plan.region_name}"})
    return {"candidates": candidates}


def chosen_indicators(plan: PlanState) -> list[str]:
    """Indicators named by the bimtek II quick-win candidates, in order, without repeats."""
    entry = plan.form("bimtek_2", PILLAR_ID, "quick_win_candidates")
    names = [c["indicator"] for c in entry.data["candidates"]] if entry else []
    return list(dict.fromkeys(names))


def _targets(baseline: Decimal, higher: bool, cap: Decimal | None,
             rng: random.Random) -> list[Decimal]:
    """Three targets moving ``baseline`` the right way, within [0, cap]."""
    out, value = [], baseline
    for _ in range(3):
        step = max(Decimal("0.01"), (abs(value) * Decimal(rng.randrange(2, 15)) / 100))
        value = value + step if higher else max(Decimal(0), value - step)
        if cap is not None:
            value = min(cap, value)
        out.append(value.quantize(Decimal("0.01")))
    return out


def example_targets(plan: PlanState, rng: random.Random) -> dict[str, Any]:
    ids = chosen_indicators(plan) or [rng.choice(list(INDICATORS))]
    rows = []
    for ind_id in ids:
        ind = INDICATORS[ind_id]
        base = derived_baseline(plan, ind_id)
        if base is None:
            base = Decimal(rng.randrange(0, 6000)) / 100
        cap = Decimal(100) if is_percent(ind) else None
        base = min(base, cap) if cap is not None else base
        t1, t5, t10 = _targets(base, ind.direction == "higher", cap, rng)
        rows.append({"indicator": ind_id, "baseline": str(base), "target_1y": str(t1),
                     "target_5y": str(t5), "target_10y": str(t10)})
    return {"targets": rows}


def example_implementation(plan: PlanState, rng: random.Random) -> dict[str, Any]:
    mine = sorted(q for q, qw in plan.quick_wins.items() if qw.pillar == PILLAR_ID)
    steps = []
    for q in mine:
        start = date(plan.programme_year + 1, 1, 1) + timedelta(days=rng.randrange(0, 90))
        for n in range(rng.randint(1, 2)):
            begin = start + timedelta(days=120 * n)
            steps.append({"step_id": f"{q}-S{n + 1}", "quick_win_id": q,
                          "agency": plan.quick_wins[q].agency, "start": begin.isoformat(),
                          "end": (begin + timedelta(days=rng.randrange(30, 120))).isoformat(),
                          "budget_idr": rng.randrange(25, 900) * 1_000_000,
                          "milestone": f"Tahap {n + 1} {plan.quick_wins[q].name} berjalan"})
    return {"steps": steps}


FORMS: tuple[FormSpec, ...] = (
    FormSpec(pillar=PILLAR_ID, stage="bimtek_1", form="transport_baseline",
             model=TransportBaseline, title_id="Data dasar transportasi",
             title_en="Transport baseline", example=example_baseline),
    FormSpec(pillar=PILLAR_ID, stage="bimtek_2", form="quick_win_candidates",
             model=QuickWinCandidates, title_id="Kandidat quick win mobilitas",
             title_en="Mobility quick-win candidates", example=example_candidates),
    FormSpec(pillar=PILLAR_ID, stage="bimtek_3", form="mobility_targets",
             model=MobilityTargets, title_id="Target indikator mobilitas",
             title_en="Mobility indicator targets", example=example_targets),
    FormSpec(pillar=PILLAR_ID, stage="bimtek_4", form="implementation_plan",
             model=ImplementationPlan, title_id="Rencana implementasi mobilitas",
             title_en="Mobility implementation plan", example=example_implementation),
)
