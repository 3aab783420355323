"""Who may do what, through the real engine on SQLite and PostgreSQL.

Every role (and, for the regional roles, the plan's own region and another one) against every
command of engine.roles.PERMISSIONS. For each pair the plan is put in a state where the
command is valid for an allowed role, then the actor issues it: a forbidden actor gets
PermissionDenied and nothing is written; an allowed one succeeds.

The expected table is written out by hand from the programme's rules, not read back from
PERMISSIONS, so a wrong permission makes this test fail:
- only operators (the ministry) run programmes and stages;
- regional officers fill forms, propose and follow quick wins and submit the plan for review,
  for their own region only (operators may do the same on a region's behalf: the CLI acts as
  operator by default);
- reviewers (the expert team) record findings, pass the review or return the plan;
- only the region's own regent approves or refuses the plan;
- auditors write nothing.

Each plan state is built once per module by driving a plan through the engine; a test case
copies the events up to the state it needs into its own fresh store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine import operations as ops
from engine.application import Engine
from engine.domain.plan import plan_stream
from engine.domain.programme import programme_stream
from engine.errors import PermissionDenied
from engine.pillars import PillarRegistry
from engine.records import EventMeta, NewEvent, StoredEvent
from engine.roles import PERMISSIONS, Actor, Role, authorize

PROGRAMME = "m100-2023"
REGION = "35.02"  # Kabupaten Ponorogo: the plan under test
OTHER_REGION = "33.07"  # Kabupaten Wonosobo
YEAR = 2023

ACTORS: dict[str, Actor] = {
    "operator": Actor(id="op-kominfo", role=Role.OPERATOR),
    "officer-own": Actor(id="diskominfo-35.02", role=Role.REGIONAL_OFFICER, region=REGION),
    "officer-other": Actor(id="diskominfo-33.07", role=Role.REGIONAL_OFFICER,
                           region=OTHER_REGION),
    "reviewer": Actor(id="tenaga-ahli-1", role=Role.REVIEWER),
    "regent-own": Actor(id="bupati-ponorogo", role=Role.REGENT, region=REGION),
    "regent-other": Actor(id="bupati-wonosobo", role=Role.REGENT, region=OTHER_REGION),
    "auditor": Actor(id="auditor-itjen", role=Role.AUDITOR),
}
COLUMNS = tuple(ACTORS)
Y, N = True, False

# The expected permissions, by hand.    operator officer officer reviewer regent regent auditor
#                                                  own     other            own    other
EXPECTED: dict[str, tuple[bool, ...]] = {
    "CreateProgramme":        (Y,       N,      N,      N,       N,     N,     N),
    "AddRegion":              (Y,       N,      N,      N,       N,     N,     N),
    "ScheduleStage":          (Y,       N,      N,      N,       N,     N,     N),
    "EnrolRegion":            (Y,       N,      N,      N,       N,     N,     N),
    "StartStage":             (Y,       N,      N,      N,       N,     N,     N),
    "CompleteStage":          (Y,       N,      N,      N,       N,     N,     N),
    "SubmitForm":             (Y,       Y,      N,      N,       N,     N,     N),
    "ProposeQuickWin":        (Y,       Y,      N,      N,       N,     N,     N),
    "RecordQuickWinRisk":     (Y,       Y,      N,      N,       N,     N,     N),
    "ReportQuickWinProgress": (Y,       Y,      N,      N,       N,     N,     N),
    "SubmitForReview":        (Y,       Y,      N,      N,       N,     N,     N),
    "RecordReviewFinding":    (N,       N,      N,      Y,       N,     N,     N),
    "PassReview":             (N,       N,      N,      Y,       N,     N,     N),
    "ReturnForRevision":      (N,       N,      N,      Y,       N,     N,     N),
    "ApproveByRegent":        (N,       N,      N,      N,       Y,     N,     N),
    "RefuseApproval":         (N,       N,      N,      N,       Y,     N,     N),
    "RecordBimtekSession":    (Y,       N,      N,      N,       N,     N,     N),
    "PresentQuickWin":        (Y,       Y,      N,      N,       N,     N,     N),
    "AdviseQuickWin":         (N,       N,      N,      Y,       N,     N,     N),
    "OpenEvaluation":         (Y,       N,      N,      N,       N,     N,     N),
    "SubmitEvaluation":       (Y,       Y,      N,      N,       N,     N,     N),
    "ScoreEvaluation":        (N,       N,      N,      Y,       N,     N,     N),
}


# --------------------------------------------------------------------------- plan states
# Situations a command can be valid in, in the order one plan passes through them.
SITUATIONS = ("empty", "programme", "enrolled", "bimtek_1_filled", "bimtek_2_open",
              "bimtek_3_filled", "bimtek_4_done", "review_open", "review_with_finding",
              "review_passed", "approved", "evaluation_submitted")


@dataclass(frozen=True)
class History:
    """The programme's events and the plan's events, with the plan version of each
    situation (every situation's history is a prefix of the one plan's history)."""

    programme: list[NewEvent]
    plan: list[NewEvent]
    plan_version: dict[str, int]

    def seed(self, engine: Engine, situation: str) -> None:
        if situation == "empty":
            return
        _copy(engine, programme_stream(PROGRAMME), self.programme)
        _copy(engine, plan_stream(PROGRAMME, REGION), self.plan[:self.plan_version[situation]])


def _copy(engine: Engine, stream: str, events: list[NewEvent]) -> None:
    if events:
        meta = EventMeta(actor_id="fixture", actor_role=Role.OPERATOR.value,
                         command_id=f"fixture:{stream}", correlation_id=f"fixture:{stream}")
        engine.store.append(stream, 0, events, meta)


def _new(events: list[StoredEvent]) -> list[NewEvent]:
    return [NewEvent(e.event_type, e.schema_version, e.payload) for e in events]


@pytest.fixture(scope="module")
def history(registry: PillarRegistry,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """Drive one plan of Ponorogo from enrolment to a passed review, noting each situation."""
    db = Path(tmp_path_factory.mktemp("roles")) / "history.db"
    engine = Engine(f"sqlite:///{db}", registry=registry)
    operator, officer = ACTORS["operator"], ACTORS["officer-own"]
    stream = plan_stream(PROGRAMME, REGION)
    at: dict[str, int] = {}

    def note(situation: str) -> None:
        at[situation] = engine.store.stream_version(stream)

    def stage(name: str, *, close: bool) -> None:
        ops.open_stage(engine, PROGRAMME, REGION, name, operator)
        ops.fill_stage(engine, PROGRAMME, REGION, name, seed=3)
        if close:
            outcome = ops.close_stage(engine, PROGRAMME, REGION, name, operator)
            assert outcome.completed, outcome.missing

    engine.create_programme(operator, PROGRAMME, "Gerakan Menuju 100 Smart City", YEAR, [REGION])
    ops.enrol(engine, PROGRAMME, REGION, operator)
    note("enrolled")
    stage("bimtek_1", close=False)
    note("bimtek_1_filled")
    ops.close_stage(engine, PROGRAMME, REGION, "bimtek_1", operator)
    ops.open_stage(engine, PROGRAMME, REGION, "bimtek_2", operator)
    note("bimtek_2_open")
    stage("bimtek_2", close=True)
    stage("bimtek_3", close=False)
    assert engine.plan(PROGRAMME, REGION).quick_wins
    note("bimtek_3_filled")
    ops.close_stage(engine, PROGRAMME, REGION, "bimtek_3", operator)
    stage("bimtek_4", close=True)
    note("bimtek_4_done")
    engine.execute(officer, PROGRAMME, REGION, "SubmitForReview")
    note("review_open")
    engine.execute(ACTORS["reviewer"], PROGRAMME, REGION, "RecordReviewFinding",
                   {"finding_id": "F-1", "pillar": "governance", "severity": "minor",
                    "text": "Indikator keluaran belum terukur"})
    note("review_with_finding")
    engine.execute(ACTORS["reviewer"], PROGRAMME, REGION, "PassReview")
    note("review_passed")
    engine.execute(ACTORS["regent-own"], PROGRAMME, REGION, "ApproveByRegent",
                   {"regulation_number": "Perbup No. 7 Tahun 2024"})
    note("approved")
    engine.open_evaluation(operator, PROGRAMME, YEAR + 1)
    engine.execute(officer, PROGRAMME, REGION, "SubmitEvaluation", {
        "year": YEAR + 1, "quick_wins": {first_quick_win(engine): {
            "completion_percent": 40, "evidence": "https://ponorogo.go.id/laporan"}}})
    note("evaluation_submitted")
    assert list(at) == [s for s in SITUATIONS if s not in ("empty", "programme")]
    at["programme"] = 0
    yield History(_new(engine.store.read_stream(programme_stream(PROGRAMME))),
                  _new(engine.store.read_stream(stream)), at)
    engine.close()


# --------------------------------------------------------------------------- the commands
Issue = Callable[[Engine, Actor], list[StoredEvent]]


def plan_command(name: str, data: Callable[[Engine], dict[str, Any]] | dict[str, Any] | None = None
                 ) -> Issue:
    def issue(engine: Engine, actor: Actor) -> list[StoredEvent]:
        fields = data(engine) if callable(data) else data
        return engine.execute(actor, PROGRAMME, REGION, name, fields)
    return issue


def resubmitted_readiness(engine: Engine) -> dict[str, Any]:
    entry = engine.plan(PROGRAMME, REGION).form("bimtek_1", "governance", "readiness")
    assert entry is not None
    return {"pillar": "governance", "stage": "bimtek_1", "form": "readiness", "data": entry.data}


def first_quick_win(engine: Engine) -> str:
    return sorted(engine.plan(PROGRAMME, REGION).quick_wins)[0]


@dataclass(frozen=True)
class Command:
    situation: str | None  # None: the engine has no entry point, only authorize() is checked
    issue: Issue | None = None


COMMANDS: dict[str, Command] = {
    "CreateProgramme": Command("empty", lambda engine, actor: engine.create_programme(
        actor, PROGRAMME, "Gerakan Menuju 100 Smart City", YEAR, [REGION])),
    "AddRegion": Command("programme", lambda engine, actor: engine.add_region(
        actor, PROGRAMME, OTHER_REGION)),
    "ScheduleStage": Command("programme", lambda engine, actor: engine.schedule_stage(
        actor, PROGRAMME, {"stage": "bimtek_1", "session_start": "2023-03-06",
                           "session_end": "2023-03-07", "deadline": "2023-03-31"})),
    "EnrolRegion": Command("programme", plan_command(
        "EnrolRegion", {"programme_id": PROGRAMME, "region_code": REGION})),
    "StartStage": Command("enrolled", plan_command("StartStage", {"stage": "bimtek_1"})),
    "CompleteStage": Command("bimtek_1_filled", plan_command("CompleteStage",
                                                             {"stage": "bimtek_1"})),
    "SubmitForm": Command("bimtek_1_filled", plan_command("SubmitForm", resubmitted_readiness)),
    "ProposeQuickWin": Command("bimtek_2_open", plan_command("ProposeQuickWin", {
        "quick_win_id": "GOV-QW-ROLES", "pillar": "governance", "name": "Lapor Bupati",
        "agency": "DISKOMINFO", "description": "Kanal aduan warga terpadu"})),
    "RecordQuickWinRisk": Command("bimtek_3_filled", plan_command(
        "RecordQuickWinRisk", lambda engine: {
            "quick_win_id": first_quick_win(engine), "risk_id": "R-ROLES",
            "description": "Jaringan di desa belum stabil", "likelihood": 4, "impact": 4,
            "handling": "Dipantau bulanan", "mitigation": "Kerja sama dengan operator seluler"})),
    "ReportQuickWinProgress": Command("bimtek_3_filled", plan_command(
        "ReportQuickWinProgress", lambda engine: {"quick_win_id": first_quick_win(engine),
                                                  "completion_percent": 100})),
    "SubmitForReview": Command("bimtek_4_done", plan_command("SubmitForReview")),
    "RecordReviewFinding": Command("review_open", plan_command("RecordReviewFinding", {
        "finding_id": "F-ROLES", "pillar": "economy", "text": "Target QRIS belum bertahap"})),
    "PassReview": Command("review_open", plan_command("PassReview")),
    "ReturnForRevision": Command("review_with_finding", plan_command(
        "ReturnForRevision", {"reason": "Lengkapi temuan reviu"})),
    "ApproveByRegent": Command("review_passed", plan_command("ApproveByRegent", {
        "regulation_number": "Perbup No. 7 Tahun 2024", "quick_wins_in_rpjmd": True})),
    "RefuseApproval": Command("review_passed", plan_command(
        "RefuseApproval", {"reason": "Anggaran quick win belum masuk RPJMD"})),
    "RecordBimtekSession": Command("bimtek_1_filled", plan_command("RecordBimtekSession", {
        "stage": "bimtek_1", "held_on": "2023-03-07", "venue": "Pendopo Kabupaten Ponorogo",
        "agencies": ["BAPPEDA", "DISKOMINFO"],
        "institutions": [{"name": "Polres Ponorogo", "kind": "police"}],
        "working_groups": {"governance": ["Sekretariat Daerah"]}})),
    "PresentQuickWin": Command("bimtek_3_filled", plan_command(
        "PresentQuickWin", lambda engine: {"quick_win_id": first_quick_win(engine),
                                           "presenter": "Kepala Dinas"})),
    "AdviseQuickWin": Command("bimtek_3_filled", plan_command(
        "AdviseQuickWin", lambda engine: {"quick_win_id": first_quick_win(engine),
                                          "advice_id": "A-ROLES",
                                          "text": "Mulai dari dua kecamatan percontohan"})),
    "OpenEvaluation": Command("programme", lambda engine, actor: engine.open_evaluation(
        actor, PROGRAMME, YEAR + 2)),
    "SubmitEvaluation": Command("approved", plan_command(
        "SubmitEvaluation", lambda engine: {"year": YEAR + 1, "quick_wins": {
            first_quick_win(engine): {"completion_percent": 60,
                                      "evidence": "Laporan triwulan IV"}}})),
    "ScoreEvaluation": Command("evaluation_submitted", plan_command(
        "ScoreEvaluation", lambda engine: {"year": YEAR + 1, "scores": {
            p: 3 for p in engine.plan(PROGRAMME, REGION).pillars}})),
}


def test_the_table_covers_every_command_and_every_role() -> None:
    assert set(EXPECTED) == set(PERMISSIONS), "a command was added or removed: extend the table"
    assert set(COMMANDS) == set(EXPECTED)
    assert {a.role for a in ACTORS.values()} == set(Role)
    assert all(len(row) == len(COLUMNS) for row in EXPECTED.values())


def test_every_permission_guards_a_command_the_engine_runs() -> None:
    assert [name for name, c in COMMANDS.items() if c.situation is None] == []


def _cases() -> list[Any]:
    return [pytest.param(command, who, allowed,
                         id=f"{command}-{who}-{'allowed' if allowed else 'forbidden'}")
            for command, row in EXPECTED.items() for who, allowed in zip(COLUMNS, row,
                                                                         strict=True)]


def _positions(engine: Engine) -> tuple[int, int, int]:
    store = engine.store
    return (store.last_position(), store.stream_version(programme_stream(PROGRAMME)),
            store.stream_version(plan_stream(PROGRAMME, REGION)))


@pytest.mark.parametrize(("command", "who", "allowed"), _cases())
def test_role_may_or_may_not_issue_command(engine: Engine, history: History, command: str,
                                           who: str, allowed: bool) -> None:
    actor = ACTORS[who]
    spec = COMMANDS[command]
    if spec.situation is None:  # no engine entry point: the permission check alone
        region = REGION if actor.region is not None else None
        if allowed:
            authorize(actor, command, region)
        else:
            with pytest.raises(PermissionDenied):
                authorize(actor, command, region)
        return
    assert spec.issue is not None
    history.seed(engine, spec.situation)
    before = _positions(engine)
    if not allowed:
        with pytest.raises(PermissionDenied, match=actor.id):
            spec.issue(engine, actor)
        assert _positions(engine) == before, "a refused command wrote to the store"
        return
    stored = spec.issue(engine, actor)
    assert stored, f"{command} by {who} wrote nothing"
    assert all((e.actor_id, e.actor_role) == (actor.id, actor.role.value) for e in stored)
    assert engine.store.last_position() == before[0] + len(stored)


def test_a_regional_role_is_refused_on_another_region_even_where_its_role_may_act() -> None:
    """The region check stands on its own: Wonosobo's officer and regent hold the right
    roles for these commands but not Ponorogo's plan."""
    for command, who in (("SubmitForm", "officer-other"), ("ApproveByRegent", "regent-other")):
        with pytest.raises(PermissionDenied, match=f"may not act on the plan of region {REGION}"):
            authorize(ACTORS[who], command, REGION)
        authorize(ACTORS[who], command, OTHER_REGION)
