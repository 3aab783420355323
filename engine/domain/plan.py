"""One region's masterplan (Rencana Induk) as a pure aggregate.

``decide(state, command, context) -> events`` and ``evolve(state, event) -> state``; no I/O.
State is a fold of the plan's events, so replaying history gives exactly what live code saw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo,
                      field_validator)

from engine.domain.events import Event, event, upcaster
from engine.errors import FieldError, TransitionError, ValidationError
from engine.roles import Actor

STAGES = ("enrolled", "bimtek_1", "bimtek_2", "bimtek_3", "bimtek_4", "review", "approved")
BIMTEK_STAGES = STAGES[1:5]
Stage = Literal["enrolled", "bimtek_1", "bimtek_2", "bimtek_3", "bimtek_4", "review", "approved"]
BimtekStage = Literal["bimtek_1", "bimtek_2", "bimtek_3", "bimtek_4"]
STAGE_LABELS = {
    "enrolled": "Terdaftar / enrolled",
    "bimtek_1": "Bimtek I - analisis strategis / strategic analysis",
    "bimtek_2": "Bimtek II - program & quick win",
    "bimtek_3": "Bimtek III - draf masterplan / masterplan draft",
    "bimtek_4": "Bimtek IV - implementasi / implementation",
    "review": "Reviu / review",
    "approved": "Disetujui kepala daerah / approved by the regent",
}
HIGH_RISK = 15  # likelihood x impact (each 1-5) at or above this needs a mitigation

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Ident = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")]


def plan_stream(programme_id: str, region_code: str) -> str:
    return f"plan:{programme_id}:{region_code}"


# ------------------------------------------------------------------ events
@event
class PlanEnrolled(Event):
    programme_id: str
    region_code: str
    region_name: str
    region_kind: str
    head_title: str
    pillars: tuple[str, ...]
    programme_year: int


@event
class StageStarted(Event):
    stage: BimtekStage
    revision: bool = False


@event
class FormSubmitted(Event):
    pillar: str
    stage: BimtekStage
    form: str
    data: dict[str, Any]
    form_schema_version: int = 1


@event
class StageCompleted(Event):
    stage: BimtekStage


@event
class QuickWinProposed(Event):
    quick_win_id: str
    pillar: str
    name: str
    agency: str
    description: str = ""


@event
class QuickWinRiskRecorded(Event):
    quick_win_id: str
    risk_id: str
    description: str
    likelihood: int
    impact: int
    handling: str
    mitigation: str = ""


@event
class QuickWinProgressReported(Event):
    """Schema v2: ``percent`` became ``completion_percent``; ``reason`` and ``evidence`` added."""

    schema_version = 2
    quick_win_id: str
    completion_percent: int
    reason: str = ""
    evidence: str = ""


@upcaster("QuickWinProgressReported", 1)
def upcast_progress_v1_v2(state: dict[str, Any]) -> dict[str, Any]:
    state = dict(state)
    state["completion_percent"] = state.pop("percent")
    state.setdefault("reason", "")
    state.setdefault("evidence", "")
    return state


@event
class SubmittedForReview(Event):
    round: int


@event
class ReviewFindingRecorded(Event):
    finding_id: str
    round: int
    pillar: str | None
    severity: Literal["minor", "major"]
    text: str
    reviewer: str


@event
class ReviewPassed(Event):
    round: int
    reviewer: str


@event
class ReturnedForRevision(Event):
    round: int
    reason: str
    reviewer: str


@event
class ApprovedByRegent(Event):
    regent: str
    head_title: str
    regulation_number: str = ""
    regulation_date: date | None = None
    quick_wins_in_rpjmd: bool = False


@event
class ApprovalRefused(Event):
    regent: str
    reason: str


InstitutionKind = Literal["police", "military", "red_cross", "bank", "university",
                          "community_forum", "media", "business", "other"]
# The maturity scale the expert team scores each pillar on in a yearly evaluation.
MATURITY = {1: "Rintisan / initiating", 2: "Berkembang / developing",
            3: "Terdefinisi / defined", 4: "Terkelola / managed", 5: "Optimal / optimised"}


class Institution(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Text
    kind: InstitutionKind


@event
class BimtekSessionRecorded(Event):
    """A bimtek session held for the region: when, where, who came, the working groups."""

    stage: BimtekStage
    held_on: date
    venue: str
    agencies: tuple[str, ...]
    institutions: tuple[Institution, ...] = ()
    working_groups: dict[str, tuple[str, ...]] = {}


@event
class QuickWinPresented(Event):
    quick_win_id: str
    agency: str
    presenter: str
    presented_on: date


@event
class QuickWinAdviceRecorded(Event):
    quick_win_id: str
    advice_id: str
    advisor: str
    text: str
    advised_on: date


@event
class EvaluationSubmitted(Event):
    """The region's yearly report after approval: quick-win completion (with evidence)
    and a measured value per pillar indicator."""

    year: int
    quick_wins: dict[str, dict[str, Any]]  # id -> {"completion_percent", "evidence"}
    indicators: dict[str, str]  # indicator id -> measured value (decimal text)


@event
class EvaluationScored(Event):
    year: int
    scores: dict[str, int]  # pillar -> maturity 1..5
    findings: tuple[str, ...]
    reviewer: str


# ------------------------------------------------------------------ state
@dataclass(frozen=True, slots=True)
class Session:
    stage: str
    held_on: str
    venue: str
    agencies: tuple[str, ...]
    institutions: tuple[tuple[str, str], ...]  # (name, kind)
    working_groups: dict[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Advice:
    advice_id: str
    advisor: str
    text: str
    advised_on: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    year: int
    quick_wins: dict[str, dict[str, Any]]
    indicators: dict[str, str]
    submissions: int
    scores: dict[str, int] = field(default_factory=dict)
    findings: tuple[str, ...] = ()
    reviewer: str = ""


@dataclass(frozen=True, slots=True)
class FormEntry:
    pillar: str
    stage: str
    form: str
    data: dict[str, Any]
    submissions: int
    form_schema_version: int


@dataclass(frozen=True, slots=True)
class Risk:
    risk_id: str
    description: str
    likelihood: int
    impact: int
    handling: str
    mitigation: str

    @property
    def score(self) -> int:
        return self.likelihood * self.impact


@dataclass(frozen=True, slots=True)
class QuickWin:
    quick_win_id: str
    pillar: str
    name: str
    agency: str
    description: str
    completion_percent: int = 0
    risks: tuple[Risk, ...] = ()
    progress: tuple[tuple[int, str], ...] = ()  # (percent, reason) reports in order
    presentations: tuple[tuple[str, str, str], ...] = ()  # (agency, presenter, date)
    advice: tuple[Advice, ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    finding_id: str
    round: int
    pillar: str | None
    severity: str
    text: str
    reviewer: str


@dataclass(frozen=True, slots=True)
class Approval:
    regent: str
    head_title: str
    regulation_number: str
    regulation_date: str | None
    quick_wins_in_rpjmd: bool


@dataclass(frozen=True, slots=True)
class PlanState:
    programme_id: str
    region_code: str
    region_name: str
    region_kind: str
    head_title: str
    pillars: tuple[str, ...]
    programme_year: int
    stage: str = "enrolled"
    status: Literal["open", "done"] = "done"
    version: int = 0
    review_round: int = 0
    forms: dict[str, FormEntry] = field(default_factory=dict)
    quick_wins: dict[str, QuickWin] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    approval: Approval | None = None
    refusals: tuple[str, ...] = ()
    sessions: tuple[Session, ...] = ()
    evaluations: dict[int, Evaluation] = field(default_factory=dict)

    @property
    def plan_id(self) -> str:
        return plan_stream(self.programme_id, self.region_code)

    def form(self, stage: str, pillar: str, form: str) -> FormEntry | None:
        return self.forms.get(form_key(stage, pillar, form))

    def forms_of_all(self, stage: str, form: str) -> list[FormEntry]:
        """The entries of one form across every pillar (e.g. each pillar's roadmap)."""
        return [f for f in self.forms.values() if f.stage == stage and f.form == form]

    def forms_of(self, pillar: str, stage: str | None = None) -> list[FormEntry]:
        return [f for f in self.forms.values()
                if f.pillar == pillar and (stage is None or f.stage == stage)]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready view, stable key order, used by replay and the CLI."""
        return {
            "plan_id": self.plan_id,
            "programme_id": self.programme_id,
            "region": {"code": self.region_code, "name": self.region_name,
                       "kind": self.region_kind, "head_title": self.head_title},
            "pillars": list(self.pillars),
            "programme_year": self.programme_year,
            "stage": self.stage,
            "status": self.status,
            "version": self.version,
            "review_round": self.review_round,
            "forms": {k: {"pillar": f.pillar, "stage": f.stage, "form": f.form, "data": f.data,
                          "submissions": f.submissions,
                          "form_schema_version": f.form_schema_version}
                      for k, f in sorted(self.forms.items())},
            "quick_wins": {k: {"pillar": q.pillar, "name": q.name, "agency": q.agency,
                               "description": q.description,
                               "completion_percent": q.completion_percent,
                               "risks": [{"risk_id": r.risk_id, "description": r.description,
                                          "likelihood": r.likelihood, "impact": r.impact,
                                          "score": r.score, "handling": r.handling,
                                          "mitigation": r.mitigation} for r in q.risks],
                               "progress": [list(p) for p in q.progress],
                               "presentations": [{"agency": a, "presenter": who, "on": on}
                                                 for a, who, on in q.presentations],
                               "advice": [{"advice_id": a.advice_id, "advisor": a.advisor,
                                           "text": a.text, "on": a.advised_on}
                                          for a in q.advice]}
                           for k, q in sorted(self.quick_wins.items())},
            "findings": [{"finding_id": f.finding_id, "round": f.round, "pillar": f.pillar,
                          "severity": f.severity, "text": f.text, "reviewer": f.reviewer}
                         for f in self.findings],
            "approval": None if self.approval is None else {
                "regent": self.approval.regent, "head_title": self.approval.head_title,
                "regulation_number": self.approval.regulation_number,
                "regulation_date": self.approval.regulation_date,
                "quick_wins_in_rpjmd": self.approval.quick_wins_in_rpjmd},
            "refusals": list(self.refusals),
            "sessions": [{"stage": x.stage, "held_on": x.held_on, "venue": x.venue,
                          "agencies": list(x.agencies),
                          "institutions": [{"name": n, "kind": k} for n, k in x.institutions],
                          "working_groups": {p: list(m) for p, m in
                                             sorted(x.working_groups.items())}}
                         for x in self.sessions],
            "evaluations": {str(y): {"quick_wins": e.quick_wins, "indicators": e.indicators,
                                     "submissions": e.submissions, "scores": e.scores,
                                     "findings": list(e.findings), "reviewer": e.reviewer}
                            for y, e in sorted(self.evaluations.items())},
        }


def form_key(stage: str, pillar: str, form: str) -> str:
    return f"{stage}/{pillar}/{form}"


# ------------------------------------------------------------------ evolve
# Transitions are defined over an event's JSON form: the payload exactly as stored (and
# hashed), so a replay folds the log's own bytes, and live code (``evolve`` on an event
# object) goes through the same dump as the store did. Replaying history gives exactly
# what live code saw.
EventData = dict[str, Any]


def evolve(state: PlanState | None, ev: Event) -> PlanState:
    """Apply one event. Pure: the same events always give the same state."""
    return evolve_data(state, type(ev).__name__, ev.model_dump(mode="json"))


def evolve_data(state: PlanState | None, event_type: str, data: EventData) -> PlanState:
    """Apply one event given as its type and JSON form (see ``events.event_data``)."""
    folded = fold_data(((event_type, data),), state)
    assert folded is not None
    return folded


def fold(events: list[Event], state: PlanState | None = None) -> PlanState | None:
    return fold_data(((type(ev).__name__, ev.model_dump(mode="json")) for ev in events), state)


def fold_data(items: Iterable[tuple[str, EventData]], state: PlanState | None = None, *,
              version: int | None = None) -> PlanState | None:
    """Apply events given as ``(event type, JSON form)`` pairs in order; ``version`` (when
    given) is the version of the last one. Each container of the state is copied once per
    fold, however many events change it, so folding n events costs O(n)."""
    draft = _Draft(state)
    handlers = _HANDLERS
    for event_type, data in items:
        handler = handlers.get(event_type)
        if handler is None:
            raise TransitionError(f"the plan aggregate does not handle {event_type}")
        if draft.state is None and event_type != "PlanEnrolled":
            raise TransitionError(f"{event_type} before the plan was enrolled")
        handler(draft, data)
    return draft.freeze(version)


_QUICK_WIN_SEQUENCES = ("risks", "progress", "presentations", "advice")


class _Draft:
    """A plan being folded: the state it started from, plus thawed (mutable) copies of
    what the events changed, made the first time an event touches them. The state it
    started from is never modified; ``freeze`` hands out a new frozen state."""

    __slots__ = ("state", "changed", "quick_wins")

    def __init__(self, state: PlanState | None):
        self.state = state
        self.changed: dict[str, Any] = {}
        self.quick_wins: dict[str, dict[str, Any]] = {}  # id -> QuickWin fields, thawed

    def mapping(self, name: str) -> dict[Any, Any]:
        value = self.changed.get(name)
        if value is None:
            value = self.changed[name] = dict(getattr(self.state, name))
        return value

    def sequence(self, name: str) -> list[Any]:
        value = self.changed.get(name)
        if value is None:
            value = self.changed[name] = list(getattr(self.state, name))
        return value

    def quick_win(self, quick_win_id: str) -> dict[str, Any]:
        qw = self.quick_wins.get(quick_win_id)
        if qw is None:
            assert self.state is not None
            frozen = self.state.quick_wins.get(quick_win_id)
            if frozen is None:
                raise TransitionError(f"quick win {quick_win_id!r} was never proposed")
            qw = {name: getattr(frozen, name) for name in QuickWin.__dataclass_fields__}
            for name in _QUICK_WIN_SEQUENCES:
                qw[name] = list(qw[name])
            self.quick_wins[quick_win_id] = qw
        return qw

    def freeze(self, version: int | None) -> PlanState | None:
        if self.state is None:
            return None
        changes = {name: tuple(value) if type(value) is list else value
                   for name, value in self.changed.items()}
        if self.quick_wins:
            quick_wins = changes.get("quick_wins") or dict(self.state.quick_wins)
            for quick_win_id, qw in self.quick_wins.items():
                quick_wins[quick_win_id] = QuickWin(**{
                    name: tuple(value) if type(value) is list else value
                    for name, value in qw.items()})
            changes["quick_wins"] = quick_wins
        if version is not None:
            changes["version"] = version
        return replace(self.state, **changes) if changes else self.state


def _enrolled(d: _Draft, e: EventData) -> None:
    d.state = PlanState(programme_id=e["programme_id"], region_code=e["region_code"],
                        region_name=e["region_name"], region_kind=e["region_kind"],
                        head_title=e["head_title"], pillars=tuple(e["pillars"]),
                        programme_year=e["programme_year"])
    d.changed.clear()
    d.quick_wins.clear()


def _stage_started(d: _Draft, e: EventData) -> None:
    d.changed["stage"] = e["stage"]
    d.changed["status"] = "open"


def _stage_completed(d: _Draft, e: EventData) -> None:
    d.changed["stage"] = e["stage"]
    d.changed["status"] = "done"


def _form_submitted(d: _Draft, e: EventData) -> None:
    forms = d.mapping("forms")
    key = form_key(e["stage"], e["pillar"], e["form"])
    old = forms.get(key)
    forms[key] = FormEntry(e["pillar"], e["stage"], e["form"], e["data"],
                           (old.submissions if old else 0) + 1, e["form_schema_version"])


def _quick_win_proposed(d: _Draft, e: EventData) -> None:
    d.mapping("quick_wins")  # keeps proposal order
    d.quick_wins[e["quick_win_id"]] = {
        "quick_win_id": e["quick_win_id"], "pillar": e["pillar"], "name": e["name"],
        "agency": e["agency"], "description": e["description"], "completion_percent": 0,
        "risks": [], "progress": [], "presentations": [], "advice": []}


def _risk_recorded(d: _Draft, e: EventData) -> None:
    qw = d.quick_win(e["quick_win_id"])
    risk = Risk(e["risk_id"], e["description"], e["likelihood"], e["impact"], e["handling"],
                e["mitigation"])
    qw["risks"] = [r for r in qw["risks"] if r.risk_id != risk.risk_id] + [risk]


def _progress_reported(d: _Draft, e: EventData) -> None:
    qw = d.quick_win(e["quick_win_id"])
    qw["completion_percent"] = e["completion_percent"]
    qw["progress"].append((e["completion_percent"], e["reason"]))


def _submitted_for_review(d: _Draft, e: EventData) -> None:
    d.changed.update(stage="review", status="open", review_round=e["round"])


def _finding_recorded(d: _Draft, e: EventData) -> None:
    d.sequence("findings").append(Finding(e["finding_id"], e["round"], e["pillar"],
                                          e["severity"], e["text"], e["reviewer"]))


def _review_passed(d: _Draft, e: EventData) -> None:
    d.changed["status"] = "done"


def _returned_for_revision(d: _Draft, e: EventData) -> None:
    d.changed.update(stage="bimtek_4", status="open")


def _approved(d: _Draft, e: EventData) -> None:
    approval = Approval(e["regent"], e["head_title"], e["regulation_number"],
                        e["regulation_date"], e["quick_wins_in_rpjmd"])
    d.changed.update(stage="approved", status="done", approval=approval)


def _approval_refused(d: _Draft, e: EventData) -> None:
    d.changed["status"] = "open"
    d.sequence("refusals").append(e["reason"])


def _session_recorded(d: _Draft, e: EventData) -> None:
    d.sequence("sessions").append(Session(
        e["stage"], e["held_on"], e["venue"], tuple(e["agencies"]),
        tuple((i["name"], i["kind"]) for i in e["institutions"]),
        {p: tuple(m) for p, m in e["working_groups"].items()}))


def _quick_win_presented(d: _Draft, e: EventData) -> None:
    d.quick_win(e["quick_win_id"])["presentations"].append(
        (e["agency"], e["presenter"], e["presented_on"]))


def _advice_recorded(d: _Draft, e: EventData) -> None:
    d.quick_win(e["quick_win_id"])["advice"].append(
        Advice(e["advice_id"], e["advisor"], e["text"], e["advised_on"]))


def _evaluation_submitted(d: _Draft, e: EventData) -> None:
    evaluations = d.mapping("evaluations")
    old = evaluations.get(e["year"])
    evaluations[e["year"]] = Evaluation(e["year"], dict(e["quick_wins"]), dict(e["indicators"]),
                                        (old.submissions if old else 0) + 1)


def _evaluation_scored(d: _Draft, e: EventData) -> None:
    evaluations = d.mapping("evaluations")
    entry = evaluations.get(e["year"])
    if entry is None:
        raise TransitionError(f"evaluation {e['year']} was scored before it was submitted")
    evaluations[e["year"]] = replace(entry, scores=dict(e["scores"]),
                                     findings=tuple(e["findings"]), reviewer=e["reviewer"])


_HANDLERS: dict[str, Callable[[_Draft, EventData], None]] = {
    "PlanEnrolled": _enrolled,
    "StageStarted": _stage_started,
    "StageCompleted": _stage_completed,
    "FormSubmitted": _form_submitted,
    "QuickWinProposed": _quick_win_proposed,
    "QuickWinRiskRecorded": _risk_recorded,
    "QuickWinProgressReported": _progress_reported,
    "SubmittedForReview": _submitted_for_review,
    "ReviewFindingRecorded": _finding_recorded,
    "ReviewPassed": _review_passed,
    "ReturnedForRevision": _returned_for_revision,
    "ApprovedByRegent": _approved,
    "ApprovalRefused": _approval_refused,
    "BimtekSessionRecorded": _session_recorded,
    "QuickWinPresented": _quick_win_presented,
    "QuickWinAdviceRecorded": _advice_recorded,
    "EvaluationSubmitted": _evaluation_submitted,
    "EvaluationScored": _evaluation_scored,
}


# ------------------------------------------------------------------ commands
class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnrolRegion(Command):
    programme_id: Ident
    region_code: str


class StartStage(Command):
    stage: BimtekStage


class CompleteStage(Command):
    stage: BimtekStage


class SubmitForm(Command):
    pillar: Ident
    stage: BimtekStage
    form: Ident
    data: dict[str, Any]


class ProposeQuickWin(Command):
    quick_win_id: Ident
    pillar: Ident
    name: Text
    agency: Text
    description: str = ""


class RecordQuickWinRisk(Command):
    quick_win_id: Ident
    risk_id: Ident
    description: Text
    likelihood: int = Field(ge=1, le=5)
    impact: int = Field(ge=1, le=5)
    handling: Text
    mitigation: str = Field(default="", validate_default=True)

    @field_validator("mitigation")
    @classmethod
    def _high_risk_needs_mitigation(cls, mitigation: str, info: ValidationInfo) -> str:
        # a field validator (not a model one) so the refusal names the field "mitigation"
        likelihood, impact = info.data.get("likelihood"), info.data.get("impact")
        if likelihood is None or impact is None:
            return mitigation  # already refused for its own field
        if likelihood * impact >= HIGH_RISK and not mitigation.strip():
            raise ValueError(f"a risk scored {likelihood}x{impact}={likelihood * impact} "
                             f"(>= {HIGH_RISK}) needs a mitigation")
        return mitigation


class ReportQuickWinProgress(Command):
    quick_win_id: Ident
    completion_percent: int = Field(ge=0, le=100)
    reason: str = ""
    evidence: str = ""


class SubmitForReview(Command):
    pass


class RecordReviewFinding(Command):
    finding_id: Ident
    text: Text
    pillar: str | None = None
    severity: Literal["minor", "major"] = "major"


class PassReview(Command):
    pass


class ReturnForRevision(Command):
    reason: Text


class ApproveByRegent(Command):
    regulation_number: str = ""
    regulation_date: date | None = None
    quick_wins_in_rpjmd: bool = False


class RefuseApproval(Command):
    reason: Text


class RecordBimtekSession(Command):
    stage: BimtekStage
    held_on: date
    venue: Text
    agencies: tuple[Text, ...] = Field(min_length=1)
    institutions: tuple[Institution, ...] = ()
    working_groups: dict[Ident, tuple[Text, ...]] = {}


class PresentQuickWin(Command):
    quick_win_id: Ident
    presenter: Text
    agency: str = ""  # default: the quick win's owning agency


class AdviseQuickWin(Command):
    quick_win_id: Ident
    advice_id: Ident
    text: Text


class EvaluationQuickWin(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    completion_percent: int = Field(ge=0, le=100)
    evidence: Text


Measured = Annotated[str, StringConstraints(strip_whitespace=True,
                                            pattern=r"^-?[0-9]{1,15}(\.[0-9]{1,6})?$")]


class SubmitEvaluation(Command):
    year: int = Field(ge=2017, le=2100)
    quick_wins: dict[Ident, EvaluationQuickWin] = {}
    indicators: dict[str, Measured] = {}


class ScoreEvaluation(Command):
    year: int = Field(ge=2017, le=2100)
    scores: dict[Ident, Annotated[int, Field(ge=1, le=5)]]
    findings: tuple[Text, ...] = ()


PLAN_COMMANDS: dict[str, type[Command]] = {
    c.__name__: c for c in (EnrolRegion, StartStage, CompleteStage, SubmitForm, ProposeQuickWin,
                            RecordQuickWinRisk, ReportQuickWinProgress, SubmitForReview,
                            RecordReviewFinding, PassReview, ReturnForRevision, ApproveByRegent,
                            RefuseApproval, RecordBimtekSession, PresentQuickWin,
                            AdviseQuickWin, SubmitEvaluation, ScoreEvaluation)
}


@dataclass(frozen=True)
class Context:
    """What decide may know beyond the state: who asks, and the pillars' verdicts."""

    actor: Actor
    # pillar -> what is missing for the stage being completed (empty list: complete)
    gate: dict[str, list[str]] = field(default_factory=dict)
    region: Any = None  # engine.regions.Region, for EnrolRegion
    pillars: tuple[str, ...] = ()  # the programme's pillars, for EnrolRegion
    year: int = 0  # the programme's year, for EnrolRegion
    today: date | None = None  # the engine clock's date, for dated records
    evaluation_years: tuple[int, ...] = ()  # years the programme opened for evaluation
    indicators: frozenset[str] = frozenset()  # indicator ids of the plan's pillars


def allowed_commands(state: PlanState | None) -> list[str]:
    """Names of the commands the plan's stage allows (ignoring roles and gates)."""
    if state is None:
        return ["EnrolRegion"]
    i = STAGES.index(state.stage)
    out: list[str] = []
    if state.stage == "approved":
        return (["ReportQuickWinProgress"] if state.quick_wins else []) + [
            "SubmitEvaluation", "ScoreEvaluation", "RecordBimtekSession"]
    if state.stage == "review":
        if state.status == "open":
            out = ["RecordReviewFinding", "PassReview", "ReturnForRevision"]
        else:
            out = ["ApproveByRegent", "RefuseApproval"]
    elif state.status == "done":
        if state.stage == "bimtek_4":
            out.append("SubmitForReview")
        else:
            out.append(f"StartStage({STAGES[i + 1]})")
    else:
        out += [f"SubmitForm({state.stage})", f"CompleteStage({state.stage})"]
        if state.stage in ("bimtek_2", "bimtek_3"):
            out.append("ProposeQuickWin")
        if state.stage in ("bimtek_3", "bimtek_4"):
            out.append("RecordQuickWinRisk")

    if STAGES.index(state.stage) >= STAGES.index("bimtek_3") and state.quick_wins:
        out.append("ReportQuickWinProgress")
    if state.stage == "bimtek_3" and state.status == "open" and state.quick_wins:
        out += ["PresentQuickWin", "AdviseQuickWin"]
    if state.stage != "enrolled":
        out.append("RecordBimtekSession")
    return out


def _refuse(message: str, state: PlanState | None) -> TransitionError:
    return TransitionError(message, stage=None if state is None else _where(state),
                           allowed=allowed_commands(state))


def _where(state: PlanState) -> str:
    return f"{state.stage} ({'in progress' if state.status == 'open' else 'completed'})"


def _in_open_stage(state: PlanState | None, stages: tuple[str, ...], what: str) -> PlanState:
    if state is None:
        raise _refuse(f"{what}: the region is not enrolled", state)
    if state.stage not in stages or state.status != "open":
        raise _refuse(f"{what} is allowed only while {' or '.join(stages)} is in progress", state)
    return state


def decide(state: PlanState | None, command: Command, ctx: Context) -> list[Event]:
    """Turn a command into the events it causes, or raise; never writes anything."""
    name = type(command).__name__
    match command:
        case EnrolRegion():
            if state is not None:
                raise _refuse(f"region {command.region_code} is already enrolled", state)
            region = ctx.region
            return [PlanEnrolled(programme_id=command.programme_id, region_code=region.code,
                                 region_name=region.display_name, region_kind=region.kind,
                                 head_title=region.head_title, pillars=tuple(ctx.pillars),
                                 programme_year=ctx.year)]
        case StartStage(stage=stage):
            if state is None:
                raise _refuse("StartStage: the region is not enrolled", state)
            previous = STAGES[STAGES.index(stage) - 1]
            if state.stage == stage and state.status == "open":
                raise _refuse(f"{stage} is already in progress", state)
            if not (state.stage == previous and state.status == "done"):
                raise _refuse(f"{stage} can start only after {previous} is completed", state)
            return [StageStarted(stage=stage)]
        case CompleteStage(stage=stage):
            s = _in_open_stage(state, (stage,), f"CompleteStage({stage})")
            missing = {p: m for p, m in ctx.gate.items() if m}
            if missing:
                detail = "; ".join(f"{p}: {', '.join(m)}" for p, m in sorted(missing.items()))
                raise TransitionError(f"{stage} cannot be completed, missing: {detail}",
                                      stage=_where(s), allowed=allowed_commands(s),
                                      missing=missing)
            return [StageCompleted(stage=stage)]
        case SubmitForm():
            s = _in_open_stage(state, (command.stage,), f"SubmitForm({command.stage})")
            _known_pillar(s, command.pillar, "pillar")
            return [FormSubmitted(pillar=command.pillar, stage=command.stage, form=command.form,
                                  data=command.data)]
        case ProposeQuickWin():
            s = _in_open_stage(state, ("bimtek_2", "bimtek_3"), "ProposeQuickWin")
            _known_pillar(s, command.pillar, "pillar")
            if command.quick_win_id in s.quick_wins:
                raise ValidationError(FieldError("quick_win_id",
                                                 f"{command.quick_win_id!r} is already proposed",
                                                 fix="choose another id"))
            return [QuickWinProposed(**command.model_dump())]
        case RecordQuickWinRisk():
            s = _in_open_stage(state, ("bimtek_3", "bimtek_4"), "RecordQuickWinRisk")
            _known_quick_win(s, command.quick_win_id)
            return [QuickWinRiskRecorded(**command.model_dump())]
        case ReportQuickWinProgress():
            if state is None or STAGES.index(state.stage) < STAGES.index("bimtek_3"):
                raise _refuse("ReportQuickWinProgress is allowed from bimtek_3 on", state)
            qw = _known_quick_win(state, command.quick_win_id)
            if command.completion_percent < qw.completion_percent and not command.reason.strip():
                raise ValidationError(FieldError(
                    "reason", f"completion goes back from {qw.completion_percent}% to "
                    f"{command.completion_percent}%", fix="give the reason it went back"))
            return [QuickWinProgressReported(**command.model_dump())]
        case SubmitForReview():
            if state is None or not (state.stage == "bimtek_4" and state.status == "done"):
                raise _refuse("SubmitForReview needs bimtek_4 completed", state)
            return [SubmittedForReview(round=state.review_round + 1)]
        case RecordReviewFinding():
            s = _in_open_stage(state, ("review",), "RecordReviewFinding")
            if command.pillar is not None:
                _known_pillar(s, command.pillar, "pillar")
            if any(f.finding_id == command.finding_id for f in s.findings):
                raise ValidationError(FieldError("finding_id",
                                                 f"{command.finding_id!r} is already recorded"))
            return [ReviewFindingRecorded(round=s.review_round, reviewer=ctx.actor.id,
                                          **command.model_dump())]
        case PassReview():
            s = _in_open_stage(state, ("review",), "PassReview")
            return [ReviewPassed(round=s.review_round, reviewer=ctx.actor.id)]
        case ReturnForRevision():
            s = _in_open_stage(state, ("review",), "ReturnForRevision")
            if not any(f.round == s.review_round for f in s.findings):
                raise _refuse("ReturnForRevision needs at least one finding recorded in this "
                              "review round", s)
            return [ReturnedForRevision(round=s.review_round, reason=command.reason,
                                        reviewer=ctx.actor.id)]
        case ApproveByRegent() | RefuseApproval():
            if state is None or not (state.stage == "review" and state.status == "done"):
                raise _refuse(f"{name} needs a plan that passed review", state)
            if isinstance(command, RefuseApproval):
                return [ApprovalRefused(regent=ctx.actor.id, reason=command.reason)]
            return [ApprovedByRegent(regent=ctx.actor.id, head_title=state.head_title,
                                     **command.model_dump())]
        case RecordBimtekSession():
            if state is None or STAGES.index(state.stage) < STAGES.index(command.stage):
                raise _refuse(f"a {command.stage} session can be recorded once the plan has "
                              f"reached {command.stage}", state)
            for pillar in command.working_groups:
                _known_pillar(state, pillar, f"working_groups.{pillar}")
            if abs(command.held_on.year - state.programme_year) > 1:
                raise ValidationError(FieldError("held_on", f"{command.held_on} is far from "
                                                 f"programme year {state.programme_year}",
                                                 fix="give the session's real date"))
            return [BimtekSessionRecorded(**command.model_dump())]
        case PresentQuickWin():
            s = _in_open_stage(state, ("bimtek_3",), "PresentQuickWin")
            qw = _known_quick_win(s, command.quick_win_id)
            agency = command.agency.strip() or qw.agency
            if agency != qw.agency:
                raise ValidationError(FieldError("agency", f"{command.quick_win_id} is owned by "
                                                 f"{qw.agency}, which presents it",
                                                 fix=f"leave agency out or give {qw.agency}"))
            return [QuickWinPresented(quick_win_id=qw.quick_win_id, agency=agency,
                                      presenter=command.presenter,
                                      presented_on=_today(ctx))]
        case AdviseQuickWin():
            s = _in_open_stage(state, ("bimtek_3",), "AdviseQuickWin")
            qw = _known_quick_win(s, command.quick_win_id)
            if any(a.advice_id == command.advice_id for a in qw.advice):
                raise ValidationError(FieldError("advice_id", f"{command.advice_id!r} is "
                                                 "already recorded", fix="choose another id"))
            return [QuickWinAdviceRecorded(quick_win_id=qw.quick_win_id,
                                           advice_id=command.advice_id, advisor=ctx.actor.id,
                                           text=command.text, advised_on=_today(ctx))]
        case SubmitEvaluation():
            s = _approved_for_evaluation(state, command.year, ctx, "SubmitEvaluation")
            scored = s.evaluations.get(command.year)
            if scored is not None and scored.scores:
                raise _refuse(f"the {command.year} evaluation is scored already", s)
            errors = [FieldError(f"quick_wins.{q}", f"no quick win {q!r} in this plan",
                                 fix="one of " + ", ".join(sorted(s.quick_wins)))
                      for q in command.quick_wins if q not in s.quick_wins]
            errors += [FieldError(f"indicators.{i}", f"{i!r} is not an indicator of this "
                                  "plan's pillars", fix="see `smartcity indicators`")
                       for i in command.indicators if i not in ctx.indicators]
            if not command.quick_wins and not command.indicators:
                errors.append(FieldError("quick_wins", "the evaluation reports nothing",
                                         fix="report quick wins and indicators"))
            if errors:
                raise ValidationError(errors)
            return [EvaluationSubmitted(
                year=command.year,
                quick_wins={q: v.model_dump() for q, v in command.quick_wins.items()},
                indicators=dict(command.indicators))]
        case ScoreEvaluation():
            s = _approved_for_evaluation(state, command.year, ctx, "ScoreEvaluation")
            if command.year not in s.evaluations:
                raise _refuse(f"the region has not submitted its {command.year} evaluation",
                              s)
            errors = [FieldError(f"scores.{p}", f"{p!r} is not a pillar of this plan",
                                 fix="one of " + ", ".join(s.pillars))
                      for p in command.scores if p not in s.pillars]
            errors += [FieldError(f"scores.{p}", "every pillar is scored",
                                  fix="give a maturity from 1 to 5")
                       for p in s.pillars if p not in command.scores]
            if errors:
                raise ValidationError(errors)
            return [EvaluationScored(year=command.year, scores=dict(command.scores),
                                     findings=command.findings, reviewer=ctx.actor.id)]
    raise _refuse(f"unknown command {name}", state)


def _today(ctx: Context) -> date:
    if ctx.today is None:
        raise TransitionError("the engine gave no date for a dated record")
    return ctx.today


def _approved_for_evaluation(state: PlanState | None, year: int, ctx: Context,
                             what: str) -> PlanState:
    if state is None or state.stage != "approved":
        raise _refuse(f"{what}: only an approved plan is evaluated", state)
    if year not in ctx.evaluation_years:
        opened = ", ".join(str(y) for y in ctx.evaluation_years) or "none yet"
        raise ValidationError(FieldError("year", f"the programme has not opened a {year} "
                                         f"evaluation (opened: {opened})",
                                         fix="`smartcity evaluate open` first"))
    return state


def _known_pillar(state: PlanState, pillar: str, fld: str) -> None:
    if pillar not in state.pillars:
        raise ValidationError(FieldError(fld, f"{pillar!r} is not a pillar of this plan",
                                         fix="one of " + ", ".join(state.pillars)))


def _known_quick_win(state: PlanState, quick_win_id: str) -> QuickWin:
    try:
        return state.quick_wins[quick_win_id]
    except KeyError:
        raise ValidationError(FieldError("quick_win_id", f"no quick win {quick_win_id!r} in "
                                         "this plan", fix="propose it first")) from None
