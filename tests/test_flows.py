"""Prefect flows over the engine: the demo, retries that write nothing twice, blocked regions,
and the programme flow with the event store on PostgreSQL.

One Prefect test server for the whole session (prefect_test_harness), heartbeat off."""

from __future__ import annotations

import pytest

from engine import operations as ops
from engine.application import Engine
from engine.roles import Actor, Role
from flows.runtime import apply_local_defaults

apply_local_defaults()

pytestmark = pytest.mark.prefect

OP = Actor(id="op-kominfo", role=Role.OPERATOR)


@pytest.fixture(scope="session", autouse=True)
def prefect_server():  # type: ignore[no-untyped-def]
    from prefect.testing.utilities import prefect_test_harness

    from flows.runtime import local_run

    with prefect_test_harness(server_startup_timeout=120), local_run():
        yield


def _programme(url: str, regions: list[str], pid: str = "m100-2023") -> Engine:
    eng = Engine(url)
    eng.create_programme(OP, pid, "Menuju 100 Smart City 2023", 2023, regions)
    return eng


def test_demo_with_five_regions_runs_to_approval(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from engine.cli import app

    db = f"sqlite:///{tmp_path}/demo.db"
    result = CliRunner().invoke(app, ["demo", "--regions", "5", "--db", db])
    assert result.exit_code == 0, result.output
    assert "Stages: approved: 5" in result.output
    eng = Engine(db)
    plans = {p.region_code: p for p in eng.plans("m100-2018")}
    assert set(plans) == {"35.02", "33.07", "35.76", "13.73", "12.05"}
    assert all(p.stage == "approved" for p in plans.values())
    assert all(p.quick_wins for p in plans.values())
    # a second run finds everything recorded and writes nothing
    before = eng.store.last_position()
    again = CliRunner().invoke(app, ["demo", "--regions", "5", "--db", db])
    assert again.exit_code == 0, again.output
    assert eng.store.last_position() == before


def test_retried_task_after_its_command_was_recorded_writes_nothing_twice(  # type: ignore[no-untyped-def]
        tmp_path, monkeypatch) -> None:
    from flows.programme import stage_flow

    url = f"sqlite:///{tmp_path}/retry.db"
    eng = _programme(url, ["35.02", "33.07"])
    for region in ("35.02", "33.07"):
        ops.enrol(eng, "m100-2023", region)
    real_close = ops.close_stage
    calls: list[str] = []

    def close_then_crash(engine, programme, region, stage, actor=ops.FLOW_OPERATOR):  # type: ignore[no-untyped-def]
        calls.append(region)
        outcome = real_close(engine, programme, region, stage, actor)
        if calls.count(region) == 1:
            raise ConnectionError("network dropped after the command was recorded")
        return outcome

    monkeypatch.setattr(ops, "close_stage", close_then_crash)
    outcomes = stage_flow(url, "m100-2023", "bimtek_1", simulate=True, seed=3)
    assert sorted(calls) == ["33.07", "33.07", "35.02", "35.02"]  # each retried once
    assert all(o["completed"] for o in outcomes)
    for region in ("35.02", "33.07"):
        types = [e.event_type for e in eng.history("m100-2023", region)]
        assert types.count("StageCompleted") == 1
        assert types.count("StageStarted") == 1
        forms = [e for e in eng.history("m100-2023", region) if e.event_type == "FormSubmitted"]
        assert len(forms) == len({e.payload for e in forms})  # no form recorded twice


def test_stage_flow_leaves_a_region_with_a_missing_form_blocked_and_reports_it(  # type: ignore[no-untyped-def]
        tmp_path) -> None:
    from flows.programme import stage_flow

    url = f"sqlite:///{tmp_path}/blocked.db"
    eng = _programme(url, ["35.76", "13.73"])
    for region in ("35.76", "13.73"):
        ops.enrol(eng, "m100-2023", region)
        ops.open_stage(eng, "m100-2023", region, "bimtek_1")
    ops.fill_stage(eng, "m100-2023", "35.76", "bimtek_1")
    ops.fill_stage(eng, "m100-2023", "13.73", "bimtek_1",
                   skip=frozenset({("governance", "swot")}))
    outcomes = {o["region"]: o for o in stage_flow(url, "m100-2023", "bimtek_1")}
    assert outcomes["35.76"]["completed"] is True
    assert outcomes["13.73"] == {"region": "13.73", "stage": "bimtek_1", "completed": False,
                                 "missing": {"governance": ["form swot"]}}
    assert eng.plan("m100-2023", "13.73").status == "open"
    assert eng.plan("m100-2023", "35.76").status == "done"


def test_programme_flow_runs_each_region_on_and_reports_where_one_is_blocked(  # type: ignore[no-untyped-def]
        tmp_path) -> None:
    """Without simulated officers a region gets only as far as its own forms take it:
    35.76 filled bimtek I and stops at bimtek II, 13.73 filled nothing and stops at I."""
    from flows.programme import programme_flow

    url = f"sqlite:///{tmp_path}/programme.db"
    eng = _programme(url, ["35.76", "13.73"])
    ops.enrol(eng, "m100-2023", "35.76")
    ops.open_stage(eng, "m100-2023", "35.76", "bimtek_1")
    ops.fill_stage(eng, "m100-2023", "35.76", "bimtek_1")
    result = programme_flow(url, "m100-2023", simulate=False)
    assert result["approved"] == []
    assert set(result["blocked"]) == {"35.76", "13.73"}
    assert result["blocked"]["35.76"]["stage"] == "bimtek_2"
    assert result["blocked"]["13.73"]["stage"] == "bimtek_1"
    assert "governance" in result["blocked"]["13.73"]["missing"]
    assert eng.plan("m100-2023", "35.76").stage == "bimtek_2"
    assert eng.plan("m100-2023", "13.73").stage == "bimtek_1"  # enrolled by the flow


def test_retried_region_after_its_approval_was_recorded_writes_nothing_twice(  # type: ignore[no-untyped-def]
        tmp_path, monkeypatch) -> None:
    """A region's task fails after the regent's approval was recorded; Prefect retries the
    whole region, which finds every step recorded and writes nothing again."""
    from flows.programme import programme_flow

    url = f"sqlite:///{tmp_path}/retry-region.db"
    eng = _programme(url, ["35.02", "33.07"])
    real_approve = ops.approve
    calls: list[str] = []

    def approve_then_crash(engine, programme, region, year):  # type: ignore[no-untyped-def]
        calls.append(region)
        real_approve(engine, programme, region, year)
        if calls.count(region) == 1:
            raise ConnectionError("network dropped after the approval was recorded")

    monkeypatch.setattr(ops, "approve", approve_then_crash)
    result = programme_flow(url, "m100-2023", simulate=True, seed=4, return_share=1.0)
    assert sorted(result["approved"]) == ["33.07", "35.02"] and not result["blocked"]
    assert sorted(calls) == ["33.07", "33.07", "35.02", "35.02"]
    for region in ("35.02", "33.07"):
        types = [e.event_type for e in eng.history("m100-2023", region)]
        assert types.count("PlanEnrolled") == 1 and types.count("ApprovedByRegent") == 1
        assert types.count("StageCompleted") == 4 + 1  # bimtek IV again after the return
        assert types.count("ReturnedForRevision") == 1
        forms = [e for e in eng.history("m100-2023", region) if e.event_type == "FormSubmitted"]
        assert len(forms) == len({e.payload for e in forms})


def test_evaluation_flow_returns_the_cohort_and_each_regions_headline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine.evaluation import evaluation_report
    from flows.evaluation import SUMMARY_FIELDS, evaluation_flow
    from flows.programme import programme_flow

    url = f"sqlite:///{tmp_path}/evaluation.db"
    eng = _programme(url, ["35.02", "33.07", "35.76"])
    programme_flow(url, "m100-2023", simulate=True, seed=2, return_share=0.0)
    result = evaluation_flow(url, "m100-2023", 2024, simulate=True, seed=2)
    full = evaluation_report(eng, "m100-2023", 2024)
    assert result["cohort"] == full["cohort"]
    assert result["cohort"]["submitted"] == result["cohort"]["scored"] == 3
    assert [r["region_code"] for r in result["regions"]] == ["33.07", "35.02", "35.76"]
    assert all(set(r) == set(SUMMARY_FIELDS) for r in result["regions"])
    assert [{k: r[k] for k in SUMMARY_FIELDS} for r in full["regions"]] == result["regions"]
    # run again: the simulated reports and scores are recorded, nothing is written twice
    before = eng.store.last_position()
    assert evaluation_flow(url, "m100-2023", 2024, simulate=True, seed=2) == result
    assert eng.store.last_position() == before


def test_programme_flow_with_the_event_store_on_postgresql(pg_url) -> None:  # type: ignore[no-untyped-def]
    from engine.reports import cohort_report
    from flows.programme import programme_flow

    eng = _programme(pg_url, ["35.02", "33.07", "35.76"])
    result = programme_flow(pg_url, "m100-2023", simulate=True, seed=5, return_share=0.5)
    assert sorted(result["approved"]) == ["33.07", "35.02", "35.76"] and not result["blocked"]
    report = cohort_report(eng, "m100-2023")
    assert report["stages"]["approved"] == 3
    assert eng.store.engine.dialect.name == "postgresql"
    assert all(r["forms"]["governance"]["submitted"] == r["forms"]["governance"]["required"]
               for r in report["regions"])


def test_reminder_flow_retries_and_sends_each_reminder_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A delivery fails: the task fails, Prefect retries it, and the retry sends only what
    was not delivered. Run again: nothing more is sent."""
    from flows.reminders import reminder_flow
    from flows.runtime import engine_for
    from tests.test_calendar import SCHEDULE, Outbox

    url = f"sqlite:///{tmp_path}/reminders.db"
    eng = _programme(url, ["35.02", "35.76"])
    for entry in SCHEDULE:
        eng.schedule_stage(OP, "m100-2023", entry)
    for region in ("35.02", "35.76"):
        ops.enrol(eng, "m100-2023", region)
    flaky = "m100-2023:35.76:bimtek_1:2023-03-31:upcoming"
    plugin = Outbox(fail={flaky})
    engine_for(url).registry.pm.register(plugin, name="flaky-mail")
    result = reminder_flow(url, "m100-2023", "2023-03-28")
    assert sorted(result["sent"]) == [flaky]  # the retry's own result: only the pending one
    assert sorted(plugin.calls) == sorted(["m100-2023:35.02:bimtek_1:2023-03-31:upcoming",
                                           flaky, flaky])
    again = reminder_flow(url, "m100-2023", "2023-03-28")
    assert again["sent"] == [] and len(again["already_sent"]) == 2
    assert len(plugin.calls) == 3


def test_engine_log_lines_appear_in_the_prefect_run_logs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import logging

    from prefect import flow, get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler
    from prefect.runtime import flow_run

    url = f"sqlite:///{tmp_path}/logs.db"
    _programme(url, ["35.02"]).close()

    @flow(name="log-probe")
    def probe(db_url: str) -> str:
        eng = Engine(db_url)
        ops.enrol(eng, "m100-2023", "35.02")
        eng.close()
        return str(flow_run.id)

    engine_logger = logging.getLogger("smartcity")
    level = engine_logger.level
    engine_logger.setLevel(logging.INFO)
    try:
        run_id = probe(url)
    finally:
        engine_logger.setLevel(level)
    APILogHandler().flush()

    async def messages() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(
                any_=[run_id])))
            return [log.message for log in logs]

    seen: list[str] = []
    for _ in range(20):  # the handler ships logs in the background
        seen = asyncio.run(messages())
        if any("command.recorded" in m for m in seen):
            break
        import time

        time.sleep(0.5)
    [line] = [m for m in seen if "command.recorded" in m]
    assert '"plan": "plan:m100-2023:35.02"' in line or "plan:m100-2023:35.02" in line
    assert "EnrolRegion" in line
