"""The 514 kabupaten and kota with their Kemendagri codes, shipped as package data."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from engine.errors import FieldError, NotFound, ValidationError

CODE_PATTERN = re.compile(r"^\d{2}\.\d{2}$")


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    kind: str  # "kabupaten" or "kota"
    province_code: str
    province: str
    head_title: str  # "Bupati" or "Walikota"
    administrative: bool  # one of DKI Jakarta's administrative regions

    @property
    def display_name(self) -> str:
        prefix = "Kota" if self.kind == "kota" else "Kabupaten"
        name = self.name if self.name.startswith(prefix) else f"{prefix} {self.name}"
        return name


@cache
def all_regions() -> dict[str, Region]:
    text = resources.files("engine.data").joinpath("regions.csv").read_text(encoding="utf-8")
    out: dict[str, Region] = {}
    for row in csv.DictReader(text.splitlines()):
        out[row["code"]] = Region(
            code=row["code"],
            name=row["name"],
            kind=row["kind"],
            province_code=row["province_code"],
            province=row["province"],
            head_title=row["head_title"],
            administrative=row["administrative"].strip().lower() == "true",
        )
    return out


def get_region(code: str, field: str = "region_code") -> Region:
    """Look a region up by its Kemendagri code (e.g. ``35.02``); clear error otherwise."""
    if not isinstance(code, str) or not CODE_PATTERN.match(code):
        raise ValidationError(
            FieldError(field, f"{code!r} is not a Kemendagri region code", fix="use the form 35.02")
        )
    try:
        return all_regions()[code]
    except KeyError:
        raise NotFound(f"{field}: no kabupaten or kota has the Kemendagri code {code!r}") from None
