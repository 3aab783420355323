"""The application layer: wires the pure domain, the pillar registry and the store.

Flows, the CLI and the web app call this module only.
"""

from __future__ import annotations

import gc
import time
import uuid
from dataclasses import replace
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError as PydanticValidationError

from engine.domain import plan as P
from engine.domain.events import decode, encode, event_data
from engine.domain.programme import (
    AddRegion,
    CreateProgramme,
    OpenEvaluation,
    ProgrammeState,
    ScheduleStage,
    decide_programme,
    evolve_programme,
    programme_stream,
)
from engine.errors import ConcurrencyError, FieldError, NotFound, ValidationError
from engine.logs import get_logger
from engine.pillars import PillarRegistry, load_registry
from engine.records import EventMeta, StoredEvent
from engine.regions import get_region
from engine.roles import Actor, Role, authorize
from engine.store.eventstore import EventStore

T = TypeVar("T")
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def new_command_id() -> str:
    return str(uuid.uuid4())


def retry_on_conflict(fn: Callable[[], T], attempts: int = 10, backoff: float = 0.005) -> T:
    """Run ``fn`` again (it must re-read state) when another writer got in first.

    The documented way for callers to handle ConcurrencyError; gives up after ``attempts``.
    """
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except ConcurrencyError:
            if attempt == attempts:
                raise
            time.sleep(backoff * attempt)
    raise AssertionError("unreachable")


class Engine:
    """Handles commands (authorise, load, validate, decide, append) and answers queries."""

    def __init__(self, url: str | None = None, *, store: EventStore | None = None,
                 registry: PillarRegistry | None = None, clock: Clock = system_clock):
        self.store = store if store is not None else EventStore(url)
        self.registry = registry if registry is not None else load_registry()
        self.clock = clock
        self.log = get_logger()
        self._plans: dict[str, P.PlanState] = {}  # stream -> last state seen (append-only log)

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ queries
    def programme(self, programme_id: str) -> ProgrammeState:
        state: ProgrammeState | None = None
        stored = self.store.read_stream(programme_stream(programme_id))
        for ev in stored:
            state = evolve_programme(state, decode(ev))
        if state is None:
            raise NotFound(f"no programme {programme_id!r}")
        return replace(state, version=stored[-1].version)

    def programmes(self) -> list[ProgrammeState]:
        return [self.programme(s.split(":", 1)[1]) for s in self.store.stream_ids("programme:")]

    def plan(self, programme_id: str, region_code: str) -> P.PlanState:
        state = self._load_plan(P.plan_stream(programme_id, region_code))
        if state is None:
            raise NotFound(f"region {region_code} is not enrolled in programme {programme_id!r}")
        return state

    def plans(self, programme_id: str) -> list[P.PlanState]:
        return [s for s in (self._load_plan(sid) for sid in
                            self.store.stream_ids(f"plan:{programme_id}:")) if s is not None]

    def history(self, programme_id: str, region_code: str) -> list[StoredEvent]:
        events = self.store.read_stream(P.plan_stream(programme_id, region_code))
        if not events:
            raise NotFound(f"region {region_code} is not enrolled in programme {programme_id!r}")
        return events

    def replay(self, stream_id: str, *, version: int | None = None,
               at: datetime | None = None) -> P.PlanState:
        """The plan as it was after ``version``, or at moment ``at`` (through ``evolve``)."""
        from engine.audit import replay_plan

        return replay_plan(self.store, stream_id, version=version, at=at)

    def _load_plan(self, stream_id: str) -> P.PlanState | None:
        cached = self._plans.get(stream_id)
        state = load_plan(self.store, stream_id, cached)
        if state is not None and state is not cached:
            self._plans[stream_id] = state
        return state

    # ------------------------------------------------------------------ commands
    def create_programme(self, actor: Actor, programme_id: str, name: str, year: int,
                         region_codes: Iterable[str] = (), *,
                         command_id: str | None = None) -> list[StoredEvent]:
        authorize(actor, "CreateProgramme", None)
        if (recorded := self._recorded(command_id)) is not None:
            return recorded
        cmd = _build(CreateProgramme, programme_id=programme_id, name=name, year=year,
                     region_codes=tuple(region_codes))
        for code in cmd.region_codes:
            get_region(code, "region_codes")
        stream = programme_stream(cmd.programme_id)
        events = decide_programme(self._programme_or_none(cmd.programme_id), cmd,
                                  self.registry.pillar_refs())
        return self._append(stream, 0, events, actor, command_id, {"programme": cmd.programme_id})

    def add_region(self, actor: Actor, programme_id: str, region_code: str, *,
                   command_id: str | None = None) -> list[StoredEvent]:
        authorize(actor, "AddRegion", None)
        if (recorded := self._recorded(command_id)) is not None:
            return recorded
        get_region(region_code)
        state = self.programme(programme_id)
        events = decide_programme(state, AddRegion(region_code=region_code))
        return self._append(programme_stream(programme_id), state.version, events, actor,
                            command_id, {"programme": programme_id})

    def schedule_stage(self, actor: Actor, programme_id: str,
                       command: ScheduleStage | dict[str, Any], *,
                       command_id: str | None = None) -> list[StoredEvent]:
        """Set or move a stage's bimtek session and deadline (moving needs a reason)."""
        authorize(actor, "ScheduleStage", None)
        if (recorded := self._recorded(command_id)) is not None:
            return recorded
        cmd = command if isinstance(command, ScheduleStage) else _build(ScheduleStage,
                                                                       **command)
        state = self.programme(programme_id)
        events = decide_programme(state, cmd)
        return self._append(programme_stream(programme_id), state.version, events, actor,
                            command_id, {"programme": programme_id})

    def open_evaluation(self, actor: Actor, programme_id: str, year: int, *,
                        command_id: str | None = None) -> list[StoredEvent]:
        """Open the yearly evaluation of the cohort's approved plans."""
        authorize(actor, "OpenEvaluation", None)
        if (recorded := self._recorded(command_id)) is not None:
            return recorded
        cmd = _build(OpenEvaluation, year=year)
        state = self.programme(programme_id)
        events = decide_programme(state, cmd)
        return self._append(programme_stream(programme_id), state.version, events, actor,
                            command_id, {"programme": programme_id})

    def _recorded(self, command_id: str | None) -> list[StoredEvent] | None:
        """The events a repeated command recorded the first time (None: a new command)."""
        if command_id is None:
            return None
        return self.store.events_for_command(command_id) or None

    def _programme_or_none(self, programme_id: str) -> ProgrammeState | None:
        try:
            return self.programme(programme_id)
        except NotFound:
            return None

    def execute(self, actor: Actor, programme_id: str, region_code: str,
                command: P.Command | str, data: dict[str, Any] | None = None, *,
                command_id: str | None = None, correlation_id: str | None = None,
                causation_id: str = "") -> list[StoredEvent]:
        """Run one plan command for ``region_code`` in ``programme_id``.

        ``command`` is a command object, or its name with ``data`` as its fields.
        With a ``command_id`` that was recorded before, nothing is written and the events
        first recorded for it are returned.
        """
        if isinstance(command, str):
            cls = P.PLAN_COMMANDS.get(command)
            if cls is None:
                raise ValidationError(FieldError("command", f"unknown command {command!r}",
                                                 fix="one of " + ", ".join(P.PLAN_COMMANDS)))
            name = command
        else:
            name = type(command).__name__
        # Who may act comes first: a refused actor learns nothing about the data.
        authorize(actor, name, region_code)
        if isinstance(command, str):
            command = _build(P.PLAN_COMMANDS[name], **(data or {}))
        stream = P.plan_stream(programme_id, region_code)
        given_id = command_id is not None
        command_id = command_id or new_command_id()
        correlation_id = correlation_id or command_id
        log = self.log.bind(plan=stream, programme=programme_id, command=name, actor=actor.id,
                            role=actor.role.value, command_id=command_id,
                            correlation_id=correlation_id)
        if given_id:
            recorded = self.store.events_for_command(command_id)
            if recorded:
                log.info("command.already_recorded", events=len(recorded))
                return recorded
        ctx = P.Context(actor=actor)
        if isinstance(command, P.EnrolRegion):
            if command.programme_id != programme_id or command.region_code != region_code:
                raise ValidationError(FieldError("region_code", "the command names another plan"))
            programme = self.programme(programme_id)
            region = get_region(region_code)
            if region_code not in programme.region_codes:
                raise ValidationError(FieldError(
                    "region_code", f"{region_code} ({region.display_name}) is not in programme "
                    f"{programme_id!r}", fix="add it with `smartcity programme add-region`"))
            ctx = P.Context(actor=actor, region=region, pillars=programme.pillar_ids,
                            year=programme.year)
            state = None
            version = 0
        else:
            state = self._load_plan(stream)
            if state is None:
                raise NotFound(f"region {region_code} is not enrolled in programme "
                               f"{programme_id!r}")
            version = state.version
            if isinstance(command, P.SubmitForm):
                clean = self.registry.validate_form(command.pillar, command.stage, command.form,
                                                    command.data, state)
                command = command.model_copy(update={"data": clean})
            elif isinstance(command, P.CompleteStage):
                ctx = P.Context(actor=actor, gate=self.registry.gate(state, command.stage))
            elif isinstance(command, P.SubmitEvaluation | P.ScoreEvaluation):
                programme = self.programme(programme_id)
                ctx = P.Context(actor=actor, evaluation_years=programme.evaluation_years,
                                indicators=frozenset(
                                    i.id for p in state.pillars
                                    for i in self.registry.indicators_of(p)))
            elif isinstance(command, P.PresentQuickWin | P.AdviseQuickWin):
                ctx = P.Context(actor=actor, today=self.clock().date())
        events = P.decide(state, command, ctx)
        stored = self._append(stream, version, events, actor, command_id,
                              {"programme": programme_id}, correlation_id, causation_id)
        log.info("command.recorded", events=[e.event_type for e in stored],
                 version=stored[-1].version if stored else version)
        return stored

    def _append(self, stream: str, expected: int, events: list, actor: Actor,  # type: ignore[type-arg]
                command_id: str | None, context: dict[str, str],
                correlation_id: str | None = None, causation_id: str = "") -> list[StoredEvent]:
        command_id = command_id or new_command_id()
        meta = EventMeta(actor_id=actor.id, actor_role=actor.role.value, command_id=command_id,
                         correlation_id=correlation_id or command_id, causation_id=causation_id)
        with structlog.contextvars.bound_contextvars(**context):
            return self.store.append(stream, expected, [encode(e) for e in events], meta,
                                     occurred_at=self.clock())


def load_plan(store: EventStore, stream_id: str,
              state: P.PlanState | None = None) -> P.PlanState | None:
    """The plan folded from its stored events, or ``state`` brought up to date with the
    events after its version (the log is append-only, so an older state stays a prefix)."""
    rows = store.read_payloads(stream_id, state.version + 1 if state else 1)
    if not rows:
        return state
    with no_cyclic_gc(len(rows) >= LONG_FOLD):
        return P.fold_data(((t, event_data(t, s, p)) for _, t, s, p in rows), state,
                           version=rows[-1][0])


LONG_FOLD = 1000  # events; folding more pauses the cyclic garbage collector


@contextmanager
def no_cyclic_gc(pause: bool) -> Iterator[None]:
    """Decoding thousands of events allocates enough containers to set off a full
    collection, which walks every object of the process (tens of milliseconds) and finds
    nothing: a fold creates no reference cycles, and what it drops is freed by reference
    counting. The collector is paused for the fold and resumed after, if it was running."""
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _build(cls: type[T], **fields: Any) -> T:
    """Construct a command, turning pydantic's errors into our field-level ValidationError."""
    try:
        return cls(**fields)
    except PydanticValidationError as exc:
        raise ValidationError.from_pydantic(exc) from None


OPERATOR = Actor(id="system", role=Role.OPERATOR)
