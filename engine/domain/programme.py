"""A programme (cohort): name, year, member regions and the pillars it uses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

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


# What a programme's calendar schedules: the four bimtek (each with a session and a
# deadline for its forms), then deadlines for the expert review and the regent's approval.
SCHEDULED = ("bimtek_1", "bimtek_2", "bimtek_3", "bimtek_4", "review", "approval")
ScheduledStage = Literal["bimtek_1", "bimtek_2", "bimtek_3", "bimtek_4", "review", "approval"]
MAX_SESSION_DAYS = 5  # a bimtek session usually spans two days


@event
class StageScheduled(Event):
    """A stage's bimtek session dates and deadline were set, or moved (with why)."""

    stage: ScheduledStage
    deadline: date
    session_start: date | None = None
    session_end: date | None = None
    venue: str = ""
    reason: str = ""
    rescheduled: bool = False


@event
class EvaluationOpened(Event):
    """A yearly evaluation cycle opened for the cohort's approved plans."""

    year: int


@dataclass(frozen=True, slots=True)
class Schedule:
    stage: str
    deadline: date
    session_start: date | None
    session_end: date | None
    venue: str
    changes: int  # how many times it was moved

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "deadline": self.deadline.isoformat(),
                "session_start": self.session_start.isoformat() if self.session_start else None,
                "session_end": self.session_end.isoformat() if self.session_end else None,
                "venue": self.venue, "changes": self.changes}


@dataclass(frozen=True, slots=True)
class ProgrammeState:
    programme_id: str
    name: str
    year: int
    region_codes: tuple[str, ...]
    pillars: tuple[PillarRef, ...]
    version: int = 0
    schedule: dict[str, Schedule] = field(default_factory=dict)
    evaluation_years: tuple[int, ...] = ()

    @property
    def pillar_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.pillars)

    def to_dict(self) -> dict:  # type: ignore[type-arg]
        return {"programme_id": self.programme_id, "name": self.name, "year": self.year,
                "region_codes": list(self.region_codes),
                "pillars": [p.model_dump() for p in self.pillars], "version": self.version,
                "schedule": [self.schedule[s].to_dict() for s in SCHEDULED
                             if s in self.schedule],
                "evaluation_years": list(self.evaluation_years)}


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


class ScheduleStage(BaseModel):
    """Set (or move) a stage's session dates and deadline."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    stage: ScheduledStage
    deadline: date
    session_start: date | None = None
    session_end: date | None = None
    venue: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""



class OpenEvaluation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    year: int = Field(ge=2017, le=2100)


def _check_dates(cmd: ScheduleStage) -> None:
    bimtek = cmd.stage.startswith("bimtek")
    if bimtek and cmd.session_start is None:
        raise ValidationError(FieldError("session_start", "a bimtek needs its session dates",
                                         fix="give session_start and session_end"))
    if bimtek and cmd.session_end is None:
        raise ValidationError(FieldError("session_end", "a bimtek needs its session dates",
                                         fix="give session_start and session_end"))
    if not bimtek and (cmd.session_start or cmd.session_end):
        raise ValidationError(FieldError("session_start", f"{cmd.stage} has a deadline only, "
                                         "no session", fix="leave the session dates out"))
    if cmd.session_start and cmd.session_end:
        if cmd.session_end < cmd.session_start:
            raise ValidationError(FieldError("session_end", "is before session_start",
                                             fix="give the session's last day"))
        if (cmd.session_end - cmd.session_start).days >= MAX_SESSION_DAYS:
            raise ValidationError(FieldError("session_end", f"a session lasts at most "
                                             f"{MAX_SESSION_DAYS} days",
                                             fix="split it or shorten it"))
        if cmd.deadline < cmd.session_end:
            raise ValidationError(FieldError("deadline", "falls before the stage's session "
                                             "ends", fix="give a date after the session"))


def _check_schedule(state: ProgrammeState, cmd: ScheduleStage) -> None:
    """Deadlines follow the stages' order; dates stay near the programme's year; a move
    says why."""
    _check_dates(cmd)
    if cmd.deadline.year not in (state.year, state.year + 1):
        raise ValidationError(FieldError("deadline", f"{cmd.deadline} is outside programme "
                                         f"year {state.year} (and the year after)",
                                         fix=f"give a date in {state.year} or {state.year + 1}"))
    i = SCHEDULED.index(cmd.stage)
    before = [state.schedule[s] for s in SCHEDULED[:i] if s in state.schedule]
    after = [state.schedule[s] for s in SCHEDULED[i + 1:] if s in state.schedule]
    if before and before[-1].deadline >= cmd.deadline:
        raise ValidationError(FieldError("deadline", f"{cmd.deadline} is not after the "
                                         f"{before[-1].stage} deadline {before[-1].deadline}",
                                         fix="stages are due in order: give a later date"))
    if after and after[0].deadline <= cmd.deadline:
        raise ValidationError(FieldError("deadline", f"{cmd.deadline} is not before the "
                                         f"{after[0].stage} deadline {after[0].deadline}",
                                         fix=f"move {after[0].stage} first, or give an "
                                             "earlier date"))
    if before and cmd.session_start and before[-1].session_end and \
            cmd.session_start <= before[-1].session_end:
        raise ValidationError(FieldError("session_start", f"the {cmd.stage} session starts "
                                         f"before the {before[-1].stage} session ends",
                                         fix="give a later session"))
    if cmd.stage in state.schedule and not cmd.reason:
        raise ValidationError(FieldError("reason", f"{cmd.stage} is scheduled already: moving "
                                         "it needs a reason", fix="say why it moves"))


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
    if isinstance(command, ScheduleStage):
        if state is None:
            raise TransitionError("no such programme")
        _check_schedule(state, command)
        return [StageScheduled(**command.model_dump(),
                               rescheduled=command.stage in state.schedule)]
    if isinstance(command, OpenEvaluation):
        if state is None:
            raise TransitionError("no such programme")
        if command.year <= state.year or command.year > state.year + 10:
            raise ValidationError(FieldError("year", f"evaluations run in the ten years after "
                                             f"the programme year {state.year}",
                                             fix=f"give a year from {state.year + 1} to "
                                                 f"{state.year + 10}"))
        if command.year in state.evaluation_years:
            raise ValidationError(FieldError("year", f"the {command.year} evaluation is open "
                                             "already"))
        return [EvaluationOpened(year=command.year)]
    raise TransitionError(f"unknown programme command {type(command).__name__}")


def evolve_programme(state: ProgrammeState | None, ev: Event) -> ProgrammeState:
    if isinstance(ev, ProgrammeCreated):
        return ProgrammeState(ev.programme_id, ev.name, ev.year, tuple(ev.region_codes),
                              tuple(ev.pillars))
    if state is None:
        raise TransitionError(f"{type(ev).__name__} before the programme was created")
    if isinstance(ev, RegionAdded):
        return replace(state, region_codes=state.region_codes + (ev.region_code,))
    if isinstance(ev, StageScheduled):
        old = state.schedule.get(ev.stage)
        entry = Schedule(ev.stage, ev.deadline, ev.session_start, ev.session_end, ev.venue,
                         (old.changes + 1) if old else 0)
        return replace(state, schedule={**state.schedule, ev.stage: entry})
    if isinstance(ev, EvaluationOpened):
        return replace(state, evaluation_years=state.evaluation_years + (ev.year,))
    raise TransitionError(f"the programme aggregate does not handle {type(ev).__name__}")
