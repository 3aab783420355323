"""The smartcity command line: real commands on a SQLite file; errors are one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from engine.cli import app

runner = CliRunner()


@pytest.fixture
def db(tmp_path):  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path}/cli.db"


def run(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_programme_enrol_stage_form_and_history(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run("programme", "create", "m100-2023", "--name", "Menuju 100 Smart City 2023",
        "--year", "2023", "--regions", "35.02,35.76", "--db", db, "--actor", "op1")
    run("region", "enrol", "m100-2023", "35.02", "--db", db)
    run("stage", "start", "m100-2023", "35.02", "bimtek_1", "--db", db)
    form = tmp_path / "spbe.yaml"
    form.write_text("year: 2022\nspbe_index: '2.71'\npredicate: baik\nonline_services: 40\n")
    result = run("form", "submit", "m100-2023", "35.02", "--pillar", "governance", "--stage",
                 "bimtek_1", "--form", "spbe_assessment", "--file", str(form), "--db", db,
                 "--role", "regional_officer", "--as-region", "35.02", "--actor", "officer")
    assert "FormSubmitted v3" in result.output
    shown = json.loads(run("plan", "show", "m100-2023", "35.02", "--json", "--db", db).output)
    assert shown["stage"] == "bimtek_1" and shown["status"] == "open"
    assert shown["forms"]["bimtek_1/governance/spbe_assessment"]["data"]["spbe_index"] == "2.71"
    lines = run("events", "m100-2023", "35.02", "--format", "jsonl", "--db", db).output.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["event_type"] for e in events] == ["PlanEnrolled", "StageStarted", "FormSubmitted"]
    assert events[2]["actor_id"] == "officer" and events[2]["actor_role"] == "regional_officer"
    assert "Kabupaten Ponorogo" in run("plan", "show", "m100-2023", "35.02", "--db", db).output


def test_refused_commands_print_one_line_and_exit_non_zero(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run("programme", "create", "m100-2023", "--name", "Menuju 100", "--year", "2023",
        "--regions", "35.02", "--db", db)
    run("region", "enrol", "m100-2023", "35.02", "--db", db)
    bad = run("stage", "complete", "m100-2023", "35.02", "bimtek_1", "--db", db, ok=False)
    assert bad.exit_code == 1
    assert "allowed from there: StartStage(bimtek_1)" in bad.output
    denied = run("stage", "start", "m100-2023", "35.02", "bimtek_1", "--db", db, "--role",
                 "auditor", ok=False)
    assert denied.exit_code == 1 and "auditor" in denied.output
    missing = run("form", "submit", "m100-2023", "35.02", "--pillar", "governance", "--stage",
                  "bimtek_1", "--form", "swot", "--file", str(tmp_path / "none.json"),
                  "--db", db, ok=False)
    assert "does not exist" in missing.output


def test_errors_have_no_traceback_in_a_real_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run([sys.executable, "-m", "engine", "region", "enrol", "nope", "35.02",
                           "--db", str(tmp_path / "x.db")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: no programme 'nope'"
    assert "Traceback" not in proc.stdout + proc.stderr


def test_forms_schema_and_plugins_listing() -> None:
    schema = json.loads(run("forms", "schema", "branding", "bimtek_2", "city_brand").output)
    assert schema["x-smartcity"]["pillar"] == "branding"
    assert "brand_name" in schema["properties"]
    listing = json.loads(run("plugins", "--json").output)
    assert [p["pillar"] for p in listing] == ["governance", "branding", "economy", "living",
                                              "society", "environment"]
    assert all("validate_form" in p["hooks"] for p in listing)
    unknown = run("forms", "schema", "nope", "bimtek_1", ok=False)
    assert unknown.exit_code == 1 and "no pillar 'nope'" in unknown.output
