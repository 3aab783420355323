"""Smart branding (Branding Cerdas): tourism, business and the city's appearance."""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

from pydantic import Field

from engine.errors import FieldError
from engine.forms import AgencyCode, Form, StandardPillar, Text, agencies
from engine.pillars import FormSpec


class CityBrand(Form):
    """Bimtek II: the region's brand (e.g. Wonosobo's "Bimo Lukar")."""

    brand_name: Text
    tagline: Text
    owner_agency: AgencyCode
    segments: list[Literal["tourism", "business", "investment", "residents"]] = Field(
        min_length=1)
    trademark_registered: bool = False
    trademark_number: str = ""


def rule_city_brand(pillar: StandardPillar, data: dict[str, Any], plan: Any) -> list[FieldError]:
    errors = []
    if data["owner_agency"] not in agencies():
        errors.append(FieldError("owner_agency", f"{data['owner_agency']!r} is not a known "
                                 "agency code", fix="e.g. DISPAR or DISKOMINFO"))
    if len(set(data["segments"])) != len(data["segments"]):
        errors.append(FieldError("segments", "a segment is listed twice", fix="list each once"))
    if data["trademark_registered"] and not data["trademark_number"].strip():
        errors.append(FieldError("trademark_number", "a registered brand has a DJKI trademark "
                                 "number", fix="give the number or untick trademark_registered"))
    return errors


def example_brand(plan: Any, rng: Any) -> dict[str, Any]:
    return {"brand_name": f"{plan.region_name.split()[-1]} Juara",
            "tagline": "Bangga, maju, sejahtera", "owner_agency": "DISPAR",
            "segments": rng.sample(["tourism", "business", "investment", "residents"], k=2),
            "trademark_registered": False, "trademark_number": ""}


PILLAR = StandardPillar(
    id="branding",
    name_id="Branding Cerdas",
    name_en="Smart Branding",
    description="Membangun citra daerah: pariwisata, bisnis dan wajah kota.",
    elements=(
        ("tourism_branding", "Branding pariwisata", "Tourism branding"),
        ("business_branding", "Branding bisnis", "Business branding"),
        ("city_appearance", "Penataan wajah kota", "City appearance"),
    ),
    indicator_file=resources.files(__name__).joinpath("indicators.csv"),
    extra_forms=[FormSpec(pillar="branding", stage="bimtek_2", form="city_brand", model=CityBrand,
                          title_id="Merek daerah", title_en="City brand",
                          example=example_brand)],
    extra_rules={"city_brand": [rule_city_brand]},
)
