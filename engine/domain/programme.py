"""A programme (cohort): name, year, member regions and the pillars it uses."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from engine.domain.events import Event, event
from engine.errors import FieldError, TransitionError, ValidationError
from engine.regions import CODE_PATTERN

ProgrammeId = Annotated[str, StringConstraints(strip_whitespace=True,
                                               pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]


def programme_stream(programme_id: str) -> str:
    return f"programme:{programme_id}"


class PillarRef(BaseModel):
    """Which plugin gave a pillar, recorded so history replays the same later."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    plugin: str
    version: str
    contract: int


@event
class ProgrammeCreated(Event):
    programme_id: str
    name: str
    year: int
    region_codes: tuple[str, ...]
    pillars: tuple[PillarRef, ...]


@event
class RegionAdded(Event):
    region_code: str


@dataclass(frozen=True, slots=True)
class ProgrammeState:
    programme_id: str
    name: str
    year: int
    region_codes: tuple[str, ...]
    pillars: tuple[PillarRef, ...]
    version: int = 0

    @property
    def pillar_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.pillars)

    def to_dict(self) -> dict:  # type: ignore[type-arg]
        return {"programme_id": self.programme_id, "name": self.name, "year": self.year,
                "region_codes": list(self.region_codes),
                "pillars": [p.model_dump() for p in self.pillars], "version": self.version}


class CreateProgramme(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    programme_id: ProgrammeId
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=200)]
    year: int = Field(ge=2017, le=2100)
    region_codes: tuple[str, ...] = ()

    @field_validator("region_codes")
    @classmethod
    def _codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for code in v:
            if not CODE_PATTERN.match(code):
                raise ValueError(f"{code!r} is not a Kemendagri region code like 35.02")
        if len(set(v)) != len(v):
            dup = sorted({c for c in v if v.count(c) > 1})
            raise ValueError(f"regions listed twice: {', '.join(dup)}")
        return v


class AddRegion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    region_code: str


def decide_programme(state: ProgrammeState | None, command: BaseModel,
                     pillars: tuple[PillarRef, ...] = ()) -> list[Event]:
    if isinstance(command, CreateProgramme):
        if state is not None:
            raise TransitionError(f"programme {command.programme_id!r} already exists")
        if not pillars:
            raise ValidationError(FieldError("pillars", "no pillar plugin is loaded",
                                             fix="install the built-in pillars"))
        return [ProgrammeCreated(programme_id=command.programme_id, name=command.name,
                                 year=command.year, region_codes=command.region_codes,
                                 pillars=pillars)]
    if isinstance(command, AddRegion):
        if state is None:
            raise TransitionError("no such programme")
        if command.region_code in state.region_codes:
            raise ValidationError(FieldError("region_code",
                                             f"{command.region_code} is already in the programme"))
        return [RegionAdded(region_code=command.region_code)]
    raise TransitionError(f"unknown programme command {type(command).__name__}")


def evolve_programme(state: ProgrammeState | None, ev: Event) -> ProgrammeState:
    if isinstance(ev, ProgrammeCreated):
        return ProgrammeState(ev.programme_id, ev.name, ev.year, tuple(ev.region_codes),
                              tuple(ev.pillars))
    if state is None:
        raise TransitionError(f"{type(ev).__name__} before the programme was created")
    if isinstance(ev, RegionAdded):
        return replace(state, region_codes=state.region_codes + (ev.region_code,))
    raise TransitionError(f"the programme aggregate does not handle {type(ev).__name__}")
