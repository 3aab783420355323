"""The mobility pillar's identity and indicators (ISO 37120:2014 section 18, U4SSC KPIs).

Indicator ids and names follow ``indicators.csv``; each row cites the framework entry it was
read from. Six of them can be computed from the bimtek I transport baseline.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any

from engine.domain.plan import PlanState
from engine.pillars import ElementSpec, IndicatorSpec, PillarSpec

PILLAR_ID = "mobility"
ELEMENTS = ["public_transport", "traffic_management", "non_motorised"]

PILLAR = PillarSpec(
    id=PILLAR_ID,
    name_id="Mobilitas Cerdas",
    name_en="Smart Mobility",
    description="Angkutan umum, manajemen lalu lintas dan transportasi tidak bermotor.",
    elements=(
        ElementSpec(id="public_transport", name_id="Angkutan umum", name_en="Public transport"),
        ElementSpec(id="traffic_management", name_id="Manajemen lalu lintas",
                    name_en="Traffic management"),
        ElementSpec(id="non_motorised", name_id="Transportasi tidak bermotor (jalan kaki, "
                    "sepeda)", name_en="Non-motorised transport (walking, cycling)"),
    ),
)


def _read() -> dict[str, IndicatorSpec]:
    text = resources.files(__package__).joinpath("indicators.csv").read_text(encoding="utf-8")
    return {row["id"]: IndicatorSpec.model_validate({**row, "pillar": PILLAR_ID})
            for row in csv.DictReader(text.splitlines())}


INDICATORS: dict[str, IndicatorSpec] = _read()


def indicators_of(element: str) -> list[IndicatorSpec]:
    return [i for i in INDICATORS.values() if i.element == element]


def is_percent(indicator: IndicatorSpec) -> bool:
    return indicator.unit.startswith("%")


# ------------------------------------------------------------------ derived from the baseline
CENT = Decimal("0.01")
Derivation = Callable[[dict[str, Any]], Decimal]


def _per_100k(field: str) -> Derivation:
    return lambda b: Decimal(str(b[field])) * 100_000 / int(b["population"])


def _per_capita(field: str) -> Derivation:
    return lambda b: Decimal(str(b[field])) / int(b["population"])


DERIVATIONS: dict[str, Derivation] = {
    "MOB-01": _per_100k("high_capacity_km"),
    "MOB-02": _per_100k("light_passenger_km"),
    "MOB-03": _per_capita("annual_public_transport_trips"),
    "MOB-06": _per_capita("registered_cars"),
    "MOB-07": _per_100k("transport_fatalities"),
    "MOB-10": _per_100k("bicycle_lanes_km"),
}


def derived_baseline(plan: PlanState, indicator: str) -> Decimal | None:
    """The indicator's value computed from the bimtek I transport baseline, to the cent;
    None when the indicator cannot be computed from it or no baseline was submitted."""
    entry = plan.form("bimtek_1", PILLAR_ID, "transport_baseline")
    derive = DERIVATIONS.get(indicator)
    if entry is None or derive is None:
        return None
    return derive(entry.data).quantize(CENT, rounding=ROUND_HALF_UP)
