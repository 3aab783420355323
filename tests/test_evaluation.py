"""Bimtek sessions, quick-win presentations and advice, and the yearly evaluation after
approval: valid and invalid submissions, the report against independent figures, and
replay within an evaluation year."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from engine import audit
from engine import operations as ops
from engine.application import Engine
from engine.cli import app
from engine.errors import SmartCityError, TransitionError, ValidationError
from engine.evaluation import MIN_MATURITY, TOLERANCE, evaluation_report
from engine.pillars import PillarRegistry
from engine.roles import Actor, Role
from tests.helpers import advance_to

PROGRAMME = "m100-2023"
APPROVED = ("35.02", "35.76")
OPEN = "33.07"  # still in bimtek III
OP = Actor(id="op-kominfo", role=Role.OPERATOR)


class StepClock:
    def __init__(self) -> None:
        self.now = datetime(2023, 3, 6, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def cohort(db_url: str, registry: PillarRegistry) -> Iterator[Engine]:
    eng = Engine(db_url, registry=registry, clock=StepClock())
    for region in APPROVED:
        advance_to(eng, OP, PROGRAMME, region, "bimtek_4")
        assert ops.close_stage(eng, PROGRAMME, region, "bimtek_4").completed
        ops.review(eng, PROGRAMME, region, return_first=False)
        ops.approve(eng, PROGRAMME, region, 2023)
    advance_to(eng, OP, PROGRAMME, OPEN, "bimtek_3")
    yield eng
    eng.close()


def refused(eng: Engine, actor: Actor, region: str, command: str, data: dict[str, Any],
            error: type[SmartCityError] = ValidationError) -> SmartCityError:
    before = eng.store.last_position()
    with pytest.raises(error) as info:
        eng.execute(actor, PROGRAMME, region, command, data)
    assert eng.store.last_position() == before  # nothing written
    return info.value


# ---------------------------------------------------------------------------- bimtek
def test_sessions_presentations_and_advice_are_recorded_and_shown(cohort: Engine,
                                                                   db_url: str) -> None:
    cohort.execute(OP, PROGRAMME, OPEN, "RecordBimtekSession", {
        "stage": "bimtek_3", "held_on": "2023-05-16", "venue": "Aula Bappeda Wonosobo",
        "agencies": ["BAPPEDA", "DISKOMINFO", "DISPARBUD"],
        "institutions": [{"name": "Polres Wonosobo", "kind": "police"},
                         {"name": "Kodim 0707", "kind": "military"},
                         {"name": "PMI Kabupaten Wonosobo", "kind": "red_cross"},
                         {"name": "Bank Jateng", "kind": "bank"},
                         {"name": "Universitas Sains Al-Qur'an", "kind": "university"}],
        "working_groups": {"economy": ["Dinas Koperasi UKM", "Bank Jateng"]}})
    plan = cohort.plan(PROGRAMME, OPEN)
    qid = sorted(plan.quick_wins)[0]
    officer = ops.officer_of(OPEN)
    cohort.execute(officer, PROGRAMME, OPEN, "PresentQuickWin",
                   {"quick_win_id": qid, "presenter": "Kepala Dinas"})
    reviewer = Actor(id="ta-kominfo-3", role=Role.REVIEWER)
    cohort.execute(reviewer, PROGRAMME, OPEN, "AdviseQuickWin", {
        "quick_win_id": qid, "advice_id": "A1",
        "text": "Mulai dari dua kecamatan dan ukur waktu layanan"})
    plan = cohort.plan(PROGRAMME, OPEN)
    [session] = plan.sessions
    assert session.venue == "Aula Bappeda Wonosobo" and len(session.institutions) == 5
    qw = plan.quick_wins[qid]
    assert qw.presentations[0][0] == qw.agency  # presented by its owning agency
    [advice] = qw.advice
    assert (advice.advisor, advice.advice_id) == ("ta-kominfo-3", "A1")
    assert advice.advised_on == cohort.clock.now.date().isoformat()  # type: ignore[attr-defined]
    shown = CliRunner().invoke(app, ["plan", "show", PROGRAMME, OPEN, "--db", db_url])
    assert "advice on" in shown.output and "Aula Bappeda" in shown.output
    as_json = json.loads(CliRunner().invoke(app, ["plan", "show", PROGRAMME, OPEN, "--json",
                                                  "--db", db_url]).output)
    assert as_json["quick_wins"][qid]["advice"][0]["advisor"] == "ta-kominfo-3"


def test_bad_session_and_advice_are_refused(cohort: Engine) -> None:
    qid = sorted(cohort.plan(PROGRAMME, OPEN).quick_wins)[0]
    session = {"stage": "bimtek_3", "held_on": "2023-05-16", "venue": "Aula",
               "agencies": ["BAPPEDA"]}
    err = refused(cohort, OP, OPEN, "RecordBimtekSession",
                  {**session, "working_groups": {"tourism": ["Dinas Pariwisata"]}})
    assert err.errors[0].field == "working_groups.tourism"  # type: ignore[attr-defined]
    err = refused(cohort, OP, OPEN, "RecordBimtekSession", {**session, "agencies": []})
    assert err.errors[0].field == "agencies"  # type: ignore[attr-defined]
    err = refused(cohort, OP, OPEN, "RecordBimtekSession",
                  {**session, "institutions": [{"name": "Polres", "kind": "army"}]})
    assert err.errors[0].field.startswith("institutions[0].kind")  # type: ignore[attr-defined]
    refused(cohort, OP, OPEN, "RecordBimtekSession", {**session, "stage": "bimtek_4"},
            TransitionError)  # the plan has not reached bimtek IV
    err = refused(cohort, ops.officer_of(OPEN), OPEN, "PresentQuickWin",
                  {"quick_win_id": qid, "presenter": "X", "agency": "SATPOL-PP"})
    assert err.errors[0].field == "agency"  # type: ignore[attr-defined]
    refused(cohort, ops.REVIEWER, APPROVED[0], "AdviseQuickWin",
            {"quick_win_id": sorted(cohort.plan(PROGRAMME, APPROVED[0]).quick_wins)[0],
             "advice_id": "A1", "text": "terlambat"}, TransitionError)  # not in bimtek III


# ---------------------------------------------------------------------------- evaluation
def _submission(eng: Engine, region: str, completion: int = 70) -> dict[str, Any]:
    plan = eng.plan(PROGRAMME, region)
    indicator = eng.registry.indicators_of("governance")[0].id
    return {"year": 2024,
            "quick_wins": {q: {"completion_percent": completion,
                               "evidence": "https://ponorogo.go.id/laporan-2024"}
                           for q in sorted(plan.quick_wins)[:2]},
            "indicators": {indicator: "3.12"}}


def test_evaluation_submissions_valid_and_invalid(cohort: Engine) -> None:
    region = APPROVED[0]
    officer = ops.officer_of(region)
    good = _submission(cohort, region)
    err = refused(cohort, officer, region, "SubmitEvaluation", good)  # not opened yet
    assert err.errors[0].field == "year"  # type: ignore[attr-defined]
    cohort.open_evaluation(OP, PROGRAMME, 2024)
    qid = next(iter(good["quick_wins"]))
    over = {**good, "quick_wins": {qid: {"completion_percent": 101, "evidence": "x"}}}
    err = refused(cohort, officer, region, "SubmitEvaluation", over)
    assert err.errors[0].field == f"quick_wins.{qid}.completion_percent"  # type: ignore[attr-defined]
    err = refused(cohort, officer, region, "SubmitEvaluation",
                  {**good, "indicators": {"NOPE.1": "1"}})
    assert err.errors[0].field == "indicators.NOPE.1"  # type: ignore[attr-defined]
    err = refused(cohort, officer, region, "SubmitEvaluation",
                  {**good, "quick_wins": {"QW-404": {"completion_percent": 5,
                                                     "evidence": "x"}}})
    assert err.errors[0].field == "quick_wins.QW-404"  # type: ignore[attr-defined]
    ind = next(iter(good["indicators"]))
    err = refused(cohort, officer, region, "SubmitEvaluation",
                  {**good, "indicators": {ind: "tiga"}})
    assert err.errors[0].field == f"indicators.{ind}"  # type: ignore[attr-defined]
    err = refused(cohort, ops.officer_of(OPEN), OPEN, "SubmitEvaluation",
                  _submission(cohort, OPEN), TransitionError)
    assert "only an approved plan is evaluated" in str(err)
    cohort.execute(officer, PROGRAMME, region, "SubmitEvaluation", good)
    # scoring: every pillar, 1..5, after the submission
    pillars = cohort.plan(PROGRAMME, region).pillars
    err = refused(cohort, ops.REVIEWER, region, "ScoreEvaluation",
                  {"year": 2024, "scores": {p: 3 for p in pillars[:-1]}})
    assert err.errors[0].field == f"scores.{pillars[-1]}"  # type: ignore[attr-defined]
    err = refused(cohort, ops.REVIEWER, region, "ScoreEvaluation",
                  {"year": 2024, "scores": {**{p: 3 for p in pillars}, pillars[0]: 6}})
    assert err.errors[0].field == f"scores.{pillars[0]}"  # type: ignore[attr-defined]
    refused(cohort, ops.REVIEWER, APPROVED[1], "ScoreEvaluation",
            {"year": 2024, "scores": {p: 3 for p in pillars}}, TransitionError)  # no report
    cohort.execute(ops.REVIEWER, PROGRAMME, region, "ScoreEvaluation",
                   {"year": 2024, "scores": {p: 3 for p in pillars}, "findings": ["Baik"]})
    refused(cohort, officer, region, "SubmitEvaluation", good, TransitionError)  # scored
    with pytest.raises(ValidationError, match="open already"):
        cohort.open_evaluation(OP, PROGRAMME, 2024)
    with pytest.raises(ValidationError, match="year"):
        cohort.open_evaluation(OP, PROGRAMME, 2023)  # the programme's own year


def _expected_completion(plan: Any, qid: str, year: int) -> int:
    """Written again here, independently of engine.evaluation."""
    steps = [s for e in plan.forms.values() if e.form == "implementation_steps"
             for s in e.data["steps"] if s["ref"] == qid]
    start = min((date.fromisoformat(s["start"]) for s in steps),
                default=date(plan.programme_year + 1, 1, 1))
    end = max((date.fromisoformat(s["end"]) for s in steps),
              default=date(plan.programme_year + 1, 12, 31))
    judged = date(year, 12, 31)
    share = (judged - start).days / max(1, (end - start).days)
    return 100 if judged >= end else 0 if judged <= start else int(100 * share)


def test_evaluation_report_matches_independent_figures(cohort: Engine) -> None:
    for year in (2024, 2025):
        ops.open_evaluation(cohort, PROGRAMME, year)
        for region in APPROVED:
            ops.simulate_evaluation(cohort, PROGRAMME, region, year, seed=11)
    report = evaluation_report(cohort, PROGRAMME, 2025)
    assert [r["region_code"] for r in report["regions"]] == sorted(APPROVED)  # approved only
    directions = {i.id: i.direction for i in cohort.registry.indicators.values()}
    behind = []
    for row in report["regions"]:
        plan = cohort.plan(PROGRAMME, row["region_code"])
        now, before = plan.evaluations[2025], plan.evaluations[2024]
        completions = [v["completion_percent"] for v in now.quick_wins.values()]
        assert row["mean_completion"] == round(sum(completions) / len(completions), 1)
        reasons = 0
        for q in row["quick_wins"]:
            assert q["completion"] == now.quick_wins[q["id"]]["completion_percent"]
            assert q["previous"] == before.quick_wins[q["id"]]["completion_percent"]
            assert q["expected"] == _expected_completion(plan, q["id"], 2025)
            assert q["behind"] == (q["completion"] < q["expected"] - TOLERANCE)
        reasons += any(q["behind"] for q in row["quick_wins"])
        mean = sum(now.scores.values()) / len(now.scores)
        assert row["mean_maturity"] == round(mean, 2)
        reasons += mean < MIN_MATURITY
        worse = better = 0
        for ind in row["indicators"]:
            first, last = (Decimal(before.indicators[ind["id"]]),
                           Decimal(now.indicators[ind["id"]]))
            up = last > first if directions[ind["id"]] == "higher" else last < first
            expected = "flat" if first == last else "improving" if up else "worsening"
            assert ind["trend"] == expected
            worse += expected == "worsening"
            better += expected == "improving"
        reasons += worse > better
        assert row["behind"] == bool(reasons)
        if reasons:
            behind.append(row["region_code"])
    assert report["cohort"]["falling_behind"] == behind
    scores = [s for r in APPROVED for s in cohort.plan(PROGRAMME, r).evaluations[2025]
              .scores.items()]
    for pillar, mean in report["cohort"]["mean_maturity_by_pillar"].items():
        values = [v for p, v in scores if p == pillar]
        assert mean == round(sum(values) / len(values), 2)


def test_replay_within_an_evaluation_year(cohort: Engine) -> None:
    region = APPROVED[0]
    ops.open_evaluation(cohort, PROGRAMME, 2024)
    ops.simulate_evaluation(cohort, PROGRAMME, region, 2024, seed=3)
    stream = f"plan:{PROGRAMME}:{region}"
    history = cohort.history(PROGRAMME, region)
    submitted = next(e for e in history if e.event_type == "EvaluationSubmitted")
    scored = next(e for e in history if e.event_type == "EvaluationScored")
    moment = audit.parse_moment
    before = audit.replay_plan(cohort.store, stream,
                               at=moment(submitted.occurred_at) - timedelta(seconds=1))
    assert before.evaluations == {} and before.stage == "approved"
    between = audit.replay_plan(cohort.store, stream, at=moment(submitted.occurred_at))
    assert between.evaluations[2024].scores == {}
    after = audit.replay_plan(cohort.store, stream, at=moment(scored.occurred_at))
    assert after.evaluations[2024].scores == cohort.plan(PROGRAMME, region).evaluations[
        2024].scores
    changes = {c.path: c for c in audit.diff(history, submitted.version, scored.version)}
    assert changes[f"evaluations.2024.scores.{after.pillars[0]}"].actor_role == "reviewer"


def test_evaluate_commands(cohort: Engine, db_url: str, tmp_path: Path) -> None:
    run = CliRunner().invoke
    region = APPROVED[1]
    assert run(app, ["evaluate", "open", PROGRAMME, "--year", "2024", "--db", db_url]
               ).exit_code == 0
    submission = tmp_path / "laporan.yaml"
    data = _submission(cohort, region, completion=95)
    submission.write_text(yaml.safe_dump({k: v for k, v in data.items() if k != "year"}))
    result = run(app, ["evaluate", "submit", PROGRAMME, region, "--year", "2024", "--file",
                       str(submission), "--as-region", region, "--db", db_url])
    assert result.exit_code == 0 and "EvaluationSubmitted" in result.output, result.output
    scores = tmp_path / "skor.json"
    pillars = cohort.plan(PROGRAMME, region).pillars
    scores.write_text(json.dumps({"scores": {p: 4 for p in pillars},
                                  "findings": ["Data pilar ekonomi lengkap"]}))
    result = run(app, ["evaluate", "score", PROGRAMME, region, "--year", "2024", "--file",
                       str(scores), "--db", db_url])
    assert result.exit_code == 0, result.output
    report = json.loads(run(app, ["evaluate", "report", PROGRAMME, "--year", "2024",
                                  "--json", "--db", db_url]).output)
    row = next(r for r in report["regions"] if r["region_code"] == region)
    assert row["submitted"] and row["mean_maturity"] == 4.0
    other = next(r for r in report["regions"] if r["region_code"] != region)
    assert other["behind"] and other["reasons"] == ["no 2024 evaluation submitted"]
    assert other["region_code"] in report["cohort"]["falling_behind"]
    table = run(app, ["evaluate", "report", PROGRAMME, "--year", "2024", "--db", db_url])
    assert table.exit_code == 0 and "1/2 submitted" in table.output
    bad = run(app, ["evaluate", "report", PROGRAMME, "--year", "2030", "--db", db_url])
    assert bad.exit_code == 1 and "not open" in bad.output
