"""Smart environment (Lingkungan Cerdas): protection, waste, energy."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from typing import Any

from pydantic import Field

from engine.errors import FieldError
from engine.forms import Form, StandardPillar, Text
from engine.pillars import FormSpec


class WasteBaseline(Form):
    """Bimtek I: waste generated, reduced and handled (the Jakstrada targets' terms)."""

    year: int = Field(ge=2010, le=2100)
    generated_tonnes_per_day: Decimal = Field(gt=0, decimal_places=1)
    reduced_percent: int = Field(ge=0, le=100, description="reduced at source")
    handled_percent: int = Field(ge=0, le=100, description="collected and processed")
    landfill: Text


def rule_waste(pillar: StandardPillar, data: dict[str, Any], plan: Any) -> list[FieldError]:
    if data["reduced_percent"] + data["handled_percent"] > 100:
        return [FieldError("handled_percent", f"reduced ({data['reduced_percent']}%) and handled "
                           f"({data['handled_percent']}%) add up to more than 100%",
                           fix="the two are shares of the same waste: correct one")]
    return []


def example_waste(plan: Any, rng: Any) -> dict[str, Any]:
    reduced = rng.randrange(5, 30)
    return {"year": plan.programme_year - 1,
            "generated_tonnes_per_day": str(Decimal(rng.randrange(500, 9000)) / 10),
            "reduced_percent": reduced, "handled_percent": rng.randrange(30, 100 - reduced),
            "landfill": f"TPA {plan.region_name.split()[-1]}"}


PILLAR = StandardPillar(
    id="environment",
    name_id="Lingkungan Cerdas",
    name_en="Smart Environment",
    description="Proteksi lingkungan, pengelolaan sampah dan pengelolaan energi.",
    elements=(
        ("environmental_protection", "Proteksi lingkungan", "Environmental protection"),
        ("waste_management", "Pengelolaan sampah", "Waste management"),
        ("energy_management", "Pengelolaan energi", "Energy management"),
    ),
    indicator_file=resources.files(__name__).joinpath("indicators.csv"),
    extra_forms=[FormSpec(pillar="environment", stage="bimtek_1", form="waste_baseline",
                          model=WasteBaseline, title_id="Data dasar persampahan",
                          title_en="Waste baseline",
                          example=example_waste)],
    extra_rules={"waste_baseline": [rule_waste]},
)
