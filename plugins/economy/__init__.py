"""Smart economy (Ekonomi Cerdas): industry, community welfare, financial transactions."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from typing import Any

from pydantic import Field

from engine.errors import FieldError
from engine.forms import Form, StandardPillar
from engine.pillars import FormSpec


class EconomicProfile(Form):
    """Bimtek I: the economic baseline the quick wins will be measured against."""

    year: int = Field(ge=2010, le=2100)
    grdp_growth_percent: Decimal = Field(ge=-30, le=30, decimal_places=2)
    msme_count: int = Field(ge=0, description="registered micro, small and medium enterprises")
    msme_online: int = Field(ge=0, description="MSMEs selling online")
    qris_merchants: int = Field(ge=0, description="merchants accepting QRIS payments")


def rule_profile(pillar: StandardPillar, data: dict[str, Any], plan: Any) -> list[FieldError]:
    errors = []
    if data["msme_online"] > data["msme_count"]:
        errors.append(FieldError("msme_online", f"{data['msme_online']} online MSMEs exceed the "
                                 f"{data['msme_count']} MSMEs registered",
                                 fix="check both counts"))
    if data["year"] > plan.programme_year:
        errors.append(FieldError("year", f"baseline year {data['year']} is after the programme "
                                 f"year {plan.programme_year}", fix="use the latest full year"))
    return errors


def example_profile(plan: Any, rng: Any) -> dict[str, Any]:
    msme = rng.randrange(5_000, 90_000)
    return {"year": plan.programme_year - 1,
            "grdp_growth_percent": str(Decimal(rng.randrange(200, 650)) / 100),
            "msme_count": msme, "msme_online": msme * rng.randrange(5, 40) // 100,
            "qris_merchants": msme * rng.randrange(10, 60) // 100}


PILLAR = StandardPillar(
    id="economy",
    name_id="Ekonomi Cerdas",
    name_en="Smart Economy",
    description="Industri, kesejahteraan rakyat dan ekosistem transaksi keuangan.",
    elements=(
        ("industry", "Industri", "Industry"),
        ("community_welfare", "Kesejahteraan rakyat", "Community welfare"),
        ("financial_ecosystem", "Ekosistem transaksi keuangan",
         "Financial-transaction ecosystem"),
    ),
    indicator_file=resources.files(__name__).joinpath("indicators.csv"),
    extra_forms=[FormSpec(pillar="economy", stage="bimtek_1", form="economic_profile",
                          model=EconomicProfile, title_id="Profil ekonomi daerah",
                          title_en="Economic profile",
                          example=example_profile)],
    extra_rules={"economic_profile": [rule_profile]},
)
