"""Smart living (Kehidupan Cerdas): harmonious living, health, transport."""

from __future__ import annotations

from importlib import resources
from typing import Any

from pydantic import Field

from engine.errors import FieldError
from engine.forms import Form, StandardPillar
from engine.pillars import FormSpec


class ServicesBaseline(Form):
    """Bimtek I: the basic services the pillar builds on."""

    population: int = Field(gt=0)
    puskesmas: int = Field(ge=0, description="community health centres")
    hospitals: int = Field(ge=0)
    hospital_beds: int = Field(ge=0)
    public_transport_routes: int = Field(ge=0)
    has_spatial_plan: bool = Field(description="a regional spatial plan (RTRW) in force")


def rule_baseline(pillar: StandardPillar, data: dict[str, Any], plan: Any) -> list[FieldError]:
    errors = []
    if data["puskesmas"] + data["hospitals"] == 0:
        errors.append(FieldError("puskesmas", "no health facility at all is implausible",
                                 fix="count the region's puskesmas and hospitals"))
    if data["hospitals"] == 0 and data["hospital_beds"] > 0:
        errors.append(FieldError("hospital_beds", "beds are counted but no hospital",
                                 fix="count the hospitals or set beds to 0"))
    return errors


def example_baseline(plan: Any, rng: Any) -> dict[str, Any]:
    population = rng.randrange(120_000, 2_500_000)
    hospitals = rng.randrange(1, 12)
    return {"population": population, "puskesmas": population // rng.randrange(20_000, 40_000) + 1,
            "hospitals": hospitals, "hospital_beds": hospitals * rng.randrange(80, 250),
            "public_transport_routes": rng.randrange(0, 30), "has_spatial_plan": True}


PILLAR = StandardPillar(
    id="living",
    name_id="Kehidupan Cerdas",
    name_en="Smart Living",
    description="Kehidupan yang harmonis (tata ruang, perumahan), kesehatan dan transportasi.",
    elements=(
        ("harmonious_living", "Harmonisasi tata ruang dan permukiman",
         "Harmonious living (spatial planning, housing)"),
        ("health", "Kesehatan", "Health"),
        ("transport", "Transportasi", "Transport"),
    ),
    indicator_file=resources.files(__name__).joinpath("indicators.csv"),
    extra_forms=[FormSpec(pillar="living", stage="bimtek_1", form="services_baseline",
                          model=ServicesBaseline, title_id="Data dasar layanan",
                          title_en="Services baseline",
                          example=example_baseline)],
    extra_rules={"services_baseline": [rule_baseline]},
)
