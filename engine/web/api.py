"""The HTTP API (FastAPI): every request acts as an authenticated user through the
engine, so the engine's role rules apply to it exactly as to the CLI and the flows.

Errors: 401 without a valid token; 403 when the role may not (nothing written); 404 for
an unknown programme or plan; 409 for a refused transition or a concurrent write; 422
for invalid input, with ``errors: [{field, message, pillar, form, fix}]``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from engine import audit
from engine.application import Engine
from engine.domain import plan as P
from engine.domain.programme import ScheduledStage
from engine.errors import (
    ConcurrencyError,
    FieldError,
    NotFound,
    PermissionDenied,
    PluginError,
    SmartCityError,
    TransitionError,
    ValidationError,
    field_path,
)
from engine.roles import REGIONAL_ROLES, Actor
from engine.users import actor_for_token

COOKIE = "smartcity_token"
STATUS = {ValidationError: 422, PermissionDenied: 403, NotFound: 404, TransitionError: 409,
          ConcurrencyError: 409, PluginError: 500}


# ---------------------------------------------------------------------------- plumbing
def get_engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def current_actor(request: Request,
                  authorization: Annotated[str | None, Header()] = None) -> Actor:
    """The user behind ``Authorization: Bearer TOKEN`` (or the dashboard's cookie)."""
    token = None
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    if token is None and request.method in ("GET", "HEAD"):
        # The dashboard's cookie reads; writes through the API need the header, so a
        # cross-site request can never act with a browser's cookie.
        token = request.cookies.get(COOKIE)
    actor = actor_for_token(get_engine(request).store, token or "")
    if actor is None:
        raise Unauthorized()
    return actor


class Unauthorized(SmartCityError):
    code = "unauthorized"

    def __init__(self) -> None:
        super().__init__("a valid API token is needed: `Authorization: Bearer TOKEN` "
                         "(`smartcity user add` prints one)")


EngineDep = Annotated[Engine, Depends(get_engine)]
ActorDep = Annotated[Actor, Depends(current_actor)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                              description="A repeated key writes nothing and "
                                              "returns the events first recorded.")]


def may_read_plan(actor: Actor, region: str) -> None:
    if actor.role in REGIONAL_ROLES and actor.region != region:
        raise PermissionDenied(f"{actor.id} is {actor.role.value} of region {actor.region} and "
                               f"may not read the plan of region {region}")


def events_out(stored: list[Any]) -> dict[str, Any]:
    return {"events": [{"stream_id": e.stream_id, "version": e.version,
                        "event_type": e.event_type, "position": e.position,
                        "occurred_at": e.occurred_at, "hash": e.hash} for e in stored]}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SmartCityError)
    async def _engine_error(_request: Request, exc: SmartCityError) -> JSONResponse:
        status = 401 if isinstance(exc, Unauthorized) else next(
            (code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        return JSONResponse(exc.to_dict(), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = list(err.get("loc", ()))
            where = loc[0] if loc else "body"
            path = field_path(loc[1:]) if len(loc) > 1 else str(where)
            errors.append({"field": path, "message": err.get("msg", "invalid"),
                           "pillar": None, "form": None, "in": where, "fix": None})
        message = "invalid input: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"error": "validation_error", "message": message,
                             "errors": errors}, status_code=422)


# ---------------------------------------------------------------------------- models
class ProgrammeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    programme_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", examples=["m100-2026"])
    name: str = Field(min_length=3, max_length=200)
    year: int = Field(ge=2017, le=2100)
    region_codes: list[str] = Field(default=[], max_length=600)


class RegionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    region_code: str = Field(pattern=r"^\d{2}\.\d{2}$", examples=["35.02"])


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deadline: str
    session_start: str | None = None
    session_end: str | None = None
    venue: str = ""
    reason: str = ""


class YearIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    year: int = Field(ge=2017, le=2100)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RiskIn(Body):
    risk_id: str
    description: str
    likelihood: int = Field(ge=1, le=5)
    impact: int = Field(ge=1, le=5)
    handling: str
    mitigation: str = ""


class ProgressIn(Body):
    completion_percent: int = Field(ge=0, le=100)
    reason: str = ""
    evidence: str = ""


class PresentIn(Body):
    presenter: str
    agency: str = ""


class AdviceIn(Body):
    advice_id: str
    text: str


class ScoreIn(Body):
    scores: dict[str, int]
    findings: list[str] = []


Stage = Literal["bimtek_1", "bimtek_2", "bimtek_3", "bimtek_4"]


# ---------------------------------------------------------------------------- routes
def build_router() -> APIRouter:  # noqa: C901 - one flat list of routes reads best
    api = APIRouter(prefix="/api")

    def run(engine: Engine, actor: Actor, programme: str, region: str, name: str,
            data: dict[str, Any], key: str | None) -> dict[str, Any]:
        return events_out(engine.execute(actor, programme, region, name, data,
                                         command_id=key))

    # programmes ------------------------------------------------------------------
    @api.get("/programmes", tags=["programmes"])
    def list_programmes(engine: EngineDep, actor: ActorDep) -> list[dict[str, Any]]:
        return [p.to_dict() for p in engine.programmes()]

    @api.post("/programmes", status_code=201, tags=["programmes"])
    def create_programme(body: ProgrammeIn, engine: EngineDep, actor: ActorDep,
                         key: IdempotencyKey = None) -> dict[str, Any]:
        return events_out(engine.create_programme(actor, body.programme_id, body.name,
                                                   body.year, body.region_codes,
                                                   command_id=key))

    @api.get("/programmes/{programme_id}", tags=["programmes"])
    def get_programme(programme_id: str, engine: EngineDep, actor: ActorDep) -> dict[str, Any]:
        return engine.programme(programme_id).to_dict()

    @api.post("/programmes/{programme_id}/regions", status_code=201, tags=["programmes"])
    def add_region(programme_id: str, body: RegionIn, engine: EngineDep, actor: ActorDep,
                   key: IdempotencyKey = None) -> dict[str, Any]:
        return events_out(engine.add_region(actor, programme_id, body.region_code,
                                            command_id=key))

    @api.put("/programmes/{programme_id}/schedule/{stage}", tags=["calendar"])
    def schedule(programme_id: str, stage: ScheduledStage, body: ScheduleIn,
                 engine: EngineDep, actor: ActorDep,
                 key: IdempotencyKey = None) -> dict[str, Any]:
        data = {k: v for k, v in body.model_dump().items() if v is not None}
        return events_out(engine.schedule_stage(actor, programme_id, {**data, "stage": stage},
                                                command_id=key))

    @api.get("/programmes/{programme_id}/report", tags=["programmes"])
    def report(programme_id: str, engine: EngineDep, actor: ActorDep) -> dict[str, Any]:
        from engine.reports import cohort_report

        return cohort_report(engine, programme_id)

    @api.get("/programmes/{programme_id}/overdue", tags=["calendar"])
    def overdue(programme_id: str, engine: EngineDep, actor: ActorDep,
                as_of: Annotated[str | None, Query(description="YYYY-MM-DD")] = None
                ) -> list[dict[str, Any]]:
        from engine.calendar import overdue as find

        day = audit.parse_moment(as_of, "as_of").date() if as_of else None
        return [o.to_dict() for o in find(engine, programme_id, day)]

    @api.post("/programmes/{programme_id}/evaluations", status_code=201, tags=["evaluation"])
    def open_evaluation(programme_id: str, body: YearIn, engine: EngineDep, actor: ActorDep,
                        key: IdempotencyKey = None) -> dict[str, Any]:
        return events_out(engine.open_evaluation(actor, programme_id, body.year,
                                                 command_id=key))

    @api.get("/programmes/{programme_id}/evaluations/{year}", tags=["evaluation"])
    def evaluation(programme_id: str, year: int, engine: EngineDep,
                   actor: ActorDep) -> dict[str, Any]:
        from engine.evaluation import evaluation_report

        engine.programme(programme_id)
        return evaluation_report(engine, programme_id, year)

    # reference -------------------------------------------------------------------
    @api.get("/regions", tags=["reference"])
    def regions(actor: ActorDep, province: str | None = None) -> list[dict[str, Any]]:
        from engine.regions import all_regions

        return [{"code": r.code, "name": r.display_name, "kind": r.kind,
                 "province": r.province, "head_title": r.head_title}
                for r in all_regions().values()
                if province is None or province.lower() in r.province.lower()]

    @api.get("/forms/{pillar}/{stage}", tags=["reference"])
    def form_schemas(pillar: str, stage: Stage, engine: EngineDep,
                     actor: ActorDep) -> list[dict[str, Any]]:
        if pillar not in engine.registry.pillars:
            raise NotFound(f"no pillar {pillar!r}")
        return [{"form": f.form, "required": f.required, "schema": f.json_schema()}
                for f in engine.registry.forms_for(pillar, stage)]

    # plans -----------------------------------------------------------------------
    base = "/plans/{programme_id}/{region_code}"

    @api.get(base, tags=["plans"])
    def get_plan(programme_id: str, region_code: str, engine: EngineDep,
                 actor: ActorDep) -> dict[str, Any]:
        may_read_plan(actor, region_code)
        return engine.plan(programme_id, region_code).to_dict()

    @api.post(base + "/enrol", status_code=201, tags=["stages"])
    def enrol(programme_id: str, region_code: str, engine: EngineDep, actor: ActorDep,
              key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "EnrolRegion",
                   {"programme_id": programme_id, "region_code": region_code}, key)

    @api.post(base + "/stages/{stage}/start", tags=["stages"])
    def start_stage(programme_id: str, region_code: str, stage: Stage, engine: EngineDep,
                    actor: ActorDep, key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "StartStage", {"stage": stage},
                   key)

    @api.post(base + "/stages/{stage}/complete", tags=["stages"])
    def complete_stage(programme_id: str, region_code: str, stage: Stage, engine: EngineDep,
                       actor: ActorDep, key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "CompleteStage",
                   {"stage": stage}, key)

    @api.get(base + "/stages/{stage}/gate", tags=["stages"])
    def gate(programme_id: str, region_code: str, stage: Stage, engine: EngineDep,
             actor: ActorDep) -> dict[str, list[str]]:
        may_read_plan(actor, region_code)
        return engine.registry.gate(engine.plan(programme_id, region_code), stage)

    @api.post(base + "/forms", tags=["forms"])
    def submit_form(programme_id: str, region_code: str, body: P.SubmitForm,
                    engine: EngineDep, actor: ActorDep,
                    key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "SubmitForm",
                   body.model_dump(), key)

    @api.post(base + "/quick-wins", status_code=201, tags=["quick wins"])
    def propose(programme_id: str, region_code: str, body: P.ProposeQuickWin,
                engine: EngineDep, actor: ActorDep,
                key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "ProposeQuickWin",
                   body.model_dump(), key)

    @api.post(base + "/quick-wins/{quick_win_id}/risks", tags=["quick wins"])
    def risk(programme_id: str, region_code: str, quick_win_id: str, body: RiskIn,
             engine: EngineDep, actor: ActorDep, key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "RecordQuickWinRisk",
                   {**body.model_dump(), "quick_win_id": quick_win_id}, key)

    @api.post(base + "/quick-wins/{quick_win_id}/progress", tags=["quick wins"])
    def progress(programme_id: str, region_code: str, quick_win_id: str, body: ProgressIn,
                 engine: EngineDep, actor: ActorDep,
                 key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "ReportQuickWinProgress",
                   {**body.model_dump(), "quick_win_id": quick_win_id}, key)

    @api.post(base + "/quick-wins/{quick_win_id}/presentation", tags=["quick wins"])
    def present(programme_id: str, region_code: str, quick_win_id: str, body: PresentIn,
                engine: EngineDep, actor: ActorDep,
                key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "PresentQuickWin",
                   {**body.model_dump(), "quick_win_id": quick_win_id}, key)

    @api.post(base + "/quick-wins/{quick_win_id}/advice", tags=["quick wins"])
    def advise(programme_id: str, region_code: str, quick_win_id: str, body: AdviceIn,
               engine: EngineDep, actor: ActorDep,
               key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "AdviseQuickWin",
                   {**body.model_dump(), "quick_win_id": quick_win_id}, key)

    @api.post(base + "/sessions", tags=["stages"])
    def session(programme_id: str, region_code: str, body: P.RecordBimtekSession,
                engine: EngineDep, actor: ActorDep,
                key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "RecordBimtekSession",
                   body.model_dump(mode="json"), key)

    @api.post(base + "/review/submit", tags=["review and approval"])
    def submit_for_review(programme_id: str, region_code: str, engine: EngineDep,
                          actor: ActorDep, key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "SubmitForReview", {}, key)

    @api.post(base + "/review/findings", tags=["review and approval"])
    def finding(programme_id: str, region_code: str, body: P.RecordReviewFinding,
                engine: EngineDep, actor: ActorDep,
                key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "RecordReviewFinding",
                   body.model_dump(), key)

    @api.post(base + "/review/pass", tags=["review and approval"])
    def pass_review(programme_id: str, region_code: str, engine: EngineDep, actor: ActorDep,
                    key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "PassReview", {}, key)

    @api.post(base + "/review/return", tags=["review and approval"])
    def return_for_revision(programme_id: str, region_code: str, body: P.ReturnForRevision,
                            engine: EngineDep, actor: ActorDep,
                            key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "ReturnForRevision",
                   body.model_dump(), key)

    @api.post(base + "/approval", tags=["review and approval"])
    def approve(programme_id: str, region_code: str, body: P.ApproveByRegent,
                engine: EngineDep, actor: ActorDep,
                key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "ApproveByRegent",
                   body.model_dump(mode="json"), key)

    @api.post(base + "/approval/refuse", tags=["review and approval"])
    def refuse(programme_id: str, region_code: str, body: P.RefuseApproval,
               engine: EngineDep, actor: ActorDep,
               key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "RefuseApproval",
                   body.model_dump(), key)

    @api.post(base + "/evaluations", tags=["evaluation"])
    def submit_evaluation(programme_id: str, region_code: str, body: P.SubmitEvaluation,
                          engine: EngineDep, actor: ActorDep,
                          key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "SubmitEvaluation",
                   body.model_dump(), key)

    @api.post(base + "/evaluations/{year}/score", tags=["evaluation"])
    def score(programme_id: str, region_code: str, year: int, body: ScoreIn,
              engine: EngineDep, actor: ActorDep,
              key: IdempotencyKey = None) -> dict[str, Any]:
        return run(engine, actor, programme_id, region_code, "ScoreEvaluation",
                   {**body.model_dump(), "year": year}, key)

    # audit -----------------------------------------------------------------------
    @api.get(base + "/timeline", tags=["audit"])
    def timeline(programme_id: str, region_code: str, engine: EngineDep, actor: ActorDep,
                 by: Annotated[str | None, Query(alias="actor")] = None,
                 role: str | None = None,
                 event_type: Annotated[list[str] | None, Query(alias="type")] = None,
                 since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
        may_read_plan(actor, region_code)
        stored = engine.history(programme_id, region_code)
        entries = audit.timeline(
            stored, actor=by, role=role, event_types=event_type or (),
            since=audit.parse_moment(since, "since") if since else None,
            until=audit.parse_moment(until, "until") if until else None)
        return [e.to_dict() for e in entries]

    @api.get(base + "/replay", tags=["audit"])
    def replay(programme_id: str, region_code: str, engine: EngineDep, actor: ActorDep,
               at: str | None = None,
               version: Annotated[int | None, Query(ge=0)] = None) -> dict[str, Any]:
        may_read_plan(actor, region_code)
        moment: datetime | None = audit.parse_moment(at) if at else None
        return audit.replay_plan(engine.store, P.plan_stream(programme_id, region_code),
                                 version=version, at=moment).to_dict()

    @api.get("/audit/verify", tags=["audit"])
    def verify(engine: EngineDep, actor: ActorDep, plan: str | None = None,
               programme: str | None = None) -> dict[str, Any]:
        stream = audit.parse_plan_id(plan) if plan else None
        return audit.verify_store(engine.store, stream_id=stream,
                                  programme=programme).to_dict()

    @api.get("/audit/anchor", tags=["audit"])
    def anchor(engine: EngineDep, actor: ActorDep,
               programme: str | None = None) -> dict[str, Any]:
        return audit.make_anchor(engine.store, programme)

    @api.get("/me", tags=["reference"])
    def me(actor: ActorDep) -> dict[str, Any]:
        return actor.model_dump(mode="json")

    return api


def create_app(db_url: str | None = None, *, engine: Engine | None = None) -> FastAPI:
    """The API (and, mounted on it, the dashboard) over one engine."""
    app = FastAPI(title="Smart City masterplan engine",
                  description="Gerakan Menuju 100 Smart City: programmes, plans, forms, "
                              "review, approval, evaluation and audit.",
                  version="1")
    app.state.engine = engine or Engine(db_url)
    install_error_handlers(app)
    app.include_router(build_router())
    try:
        from engine.web.dashboard import mount_dashboard
    except ImportError:  # pragma: no cover - the dashboard module is optional
        pass
    else:
        mount_dashboard(app)
    return app


__all__ = ["COOKIE", "FieldError", "create_app", "current_actor"]
