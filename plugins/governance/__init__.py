"""Smart governance (Tata Kelola Cerdas): public services, bureaucracy, public policy."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from typing import Any, Literal

from pydantic import Field

from engine.errors import FieldError
from engine.forms import Form, StandardPillar
from engine.pillars import FormSpec

# SPBE (e-government) maturity predicates, PermenPANRB 59/2020: index bands on a 0-5 scale.
SPBE_BANDS = (
    ("kurang", Decimal("0"), Decimal("1.8")),
    ("cukup", Decimal("1.8"), Decimal("2.6")),
    ("baik", Decimal("2.6"), Decimal("3.5")),
    ("sangat_baik", Decimal("3.5"), Decimal("4.2")),
    ("memuaskan", Decimal("4.2"), Decimal("5.01")),
)


class SpbeAssessment(Form):
    """Bimtek I: the region's latest SPBE evaluation."""

    year: int = Field(ge=2018, le=2100)
    spbe_index: Decimal = Field(ge=0, le=5, max_digits=3, decimal_places=2)
    predicate: Literal["kurang", "cukup", "baik", "sangat_baik", "memuaskan"]
    online_services: int = Field(ge=0, description="public services available online")


def spbe_predicate(index: Decimal) -> str:
    return next(name for name, low, high in SPBE_BANDS if low <= index < high)


def rule_spbe(pillar: StandardPillar, data: dict[str, Any], plan: Any) -> list[FieldError]:
    errors = []
    expected = spbe_predicate(Decimal(data["spbe_index"]))
    if data["predicate"] != expected:
        errors.append(FieldError("predicate", f"an SPBE index of {data['spbe_index']} has the "
                                 f"predicate {expected!r}, not {data['predicate']!r}",
                                 fix=f"set predicate to {expected!r} or correct the index"))
    if data["year"] > plan.programme_year:
        errors.append(FieldError("year", f"{data['year']} is after the programme year "
                                 f"{plan.programme_year}", fix="give the latest evaluation's year"))
    return errors


def example_spbe(plan: Any, rng: Any) -> dict[str, Any]:
    index = Decimal(rng.randrange(120, 450)) / 100
    return {"year": max(2018, plan.programme_year - 1), "spbe_index": str(index),
            "predicate": spbe_predicate(index), "online_services": rng.randrange(5, 120)}


PILLAR = StandardPillar(
    id="governance",
    name_id="Tata Kelola Cerdas",
    name_en="Smart Governance",
    description="Pelayanan publik, manajemen birokrasi dan kebijakan publik yang efektif.",
    elements=(
        ("public_services", "Pelayanan publik", "Public services"),
        ("bureaucracy_management", "Manajemen birokrasi", "Bureaucracy management"),
        ("public_policy", "Kebijakan publik", "Public policy"),
    ),
    indicator_file=resources.files(__name__).joinpath("indicators.csv"),
    extra_forms=[FormSpec(pillar="governance", stage="bimtek_1", form="spbe_assessment",
                          model=SpbeAssessment, title_id="Evaluasi SPBE",
                          title_en="SPBE (e-government) assessment",
                          example=example_spbe)],
    extra_rules={"spbe_assessment": [rule_spbe]},
)

