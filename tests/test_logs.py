"""Structured logs: JSON lines when not on a terminal, with the plan, command and
correlation ids bound on every line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_engine_logs_are_json_lines_with_plan_command_and_correlation_ids(
        tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/logs.db"
    env = {**os.environ, "SMARTCITY_LOG_LEVEL": "INFO", "SMARTCITY_DATABASE_URL": db}

    def smartcity(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "engine", *args], env=env, text=True,
                              capture_output=True, check=True, timeout=120)

    smartcity("programme", "create", "m100-2023", "--name", "Menuju 100 Smart City",
              "--year", "2023", "--regions", "35.02")
    smartcity("region", "enrol", "m100-2023", "35.02", "--command-id", "enrol-ponorogo")
    again = smartcity("region", "enrol", "m100-2023", "35.02", "--command-id",
                      "enrol-ponorogo")
    lines = [json.loads(line) for line in again.stderr.splitlines() if line.startswith("{")]
    assert lines, again.stderr  # not a terminal: JSON
    [line] = [x for x in lines if x["event"] == "command.already_recorded"]
    assert line["plan"] == "plan:m100-2023:35.02"
    assert line["command"] == "EnrolRegion"
    assert line["command_id"] == line["correlation_id"] == "enrol-ponorogo"
    assert line["level"] == "info" and line["timestamp"].endswith("Z")
    first = smartcity("stage", "start", "m100-2023", "35.02", "bimtek_1")
    recorded = [json.loads(x) for x in first.stderr.splitlines() if x.startswith("{")]
    [done] = [x for x in recorded if x["event"] == "command.recorded"]
    assert done["events"] == ["StageStarted"] and done["programme"] == "m100-2023"
    assert done["plan"] == "plan:m100-2023:35.02" and done["correlation_id"]


def test_a_line_below_the_level_is_dropped_before_any_processor_renders_it() -> None:
    import structlog

    from engine import logs

    logs.configure(level="WARNING", json=True)
    processors = structlog.get_config()["processors"]
    seen: list[str] = []

    def spy(logger, method, event_dict):  # type: ignore[no-untyped-def]
        seen.append(event_dict["event"])
        return event_dict

    try:
        structlog.configure(processors=[processors[0], spy, *processors[1:]])
        log = logs.get_logger()
        log.info("command.recorded", events=["StageStarted"])
        log.warning("projection.behind", events=3)
        assert seen == ["projection.behind"]
    finally:
        logs.configure()
