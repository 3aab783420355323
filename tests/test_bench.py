"""`python -m bench` runs and writes a well-formed table and JSON ("it runs"; never timed).

The peer library is optional: without it the peer figures read "not installed".
Also: the batch hash and the faster float check give exactly what the per-event code gives.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from engine.chain import canonical_json, chain_hashes, event_hash
from engine.errors import ValidationError

ROOT = Path(__file__).resolve().parent.parent


def run_bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMARTCITY_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "bench", "--quick", "--no-postgres",
                           "--runs", "1", "--out", str(tmp_path), "--workdir", str(tmp_path),
                           *args], cwd=ROOT, env=env, text=True, capture_output=True,
                          timeout=600)


def test_quick_replay_writes_table_and_json(tmp_path: Path) -> None:
    done = run_bench(tmp_path, "--only", "replay")
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["scenarios"]["replay"]["rows"]
    assert [r["database"] for r in rows] == ["SQLite"]
    ours = rows[0]["ours"]
    assert ours["error"] is None and ours["median"] > 0 and ours["unit"] == "ms"
    assert ours["peak_rss_mb"] > 0 and "synchronous=FULL" in ours["commit_mode"]
    peer = rows[0]["peer"]
    assert peer["median"] is not None or peer["unavailable"].startswith("not installed")
    md = (tmp_path / "BENCHMARKS.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| Scenario"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[:9] == ["Scenario", "Case", "Database", "Ours", "Peer", "Limit", "Ratios",
                           "Target", "Met?"]
    table = [line for line in md.splitlines() if line.startswith("| 2. Replay")]
    assert len(table) == 1 and table[0].count("|") == len(columns) + 1


def test_only_keeps_other_scenarios_and_unknown_is_refused(tmp_path: Path) -> None:
    previous = {"scenarios": {"verify": {"title": "3. Verify", "order": 3, "mode": "full",
                                         "runs": 5, "generated": "earlier", "rows": []}}}
    (tmp_path / "results.json").write_text(json.dumps(previous))
    done = run_bench(tmp_path, "--only", "replay")
    assert done.returncode == 0, done.stdout + done.stderr
    scenarios = json.loads((tmp_path / "results.json").read_text())["scenarios"]
    assert list(scenarios) == ["replay", "verify"]
    bad = run_bench(tmp_path, "--only", "nope")
    assert bad.returncode != 0 and "unknown scenario" in bad.stderr


def test_batch_hashes_equal_event_by_event_hashes() -> None:
    rng = random.Random(7)
    for _ in range(200):
        previous = rng.choice(["", "ab" * 32, "not-a-hash", "é" * 64])
        command = rng.choice(["c-1", "c-2"])
        correlation = rng.choice([command, "corr"])
        causation = rng.choice(["", "cause"])
        items = [(rng.choice(["FormSubmitted", "StageStarted"]), rng.randint(1, 3),
                  rng.randbytes(rng.randint(0, 80))) for _ in range(rng.randint(1, 6))]
        first = rng.randint(1, 500)
        when = "2018-03-01T08:00:00.000000Z"
        expected, prev = [], previous
        for i, (etype, schema, payload) in enumerate(items):
            prev = event_hash(prev, "plan:x:1", first + i, etype, schema, "actor", "role", when,
                              command, correlation, causation, payload)
            expected.append(prev)
        assert chain_hashes(previous, "plan:x:1", first, items, "actor", "role", when,
                            command, correlation, causation) == expected


@pytest.mark.parametrize("payload", [
    {"a": 1.5}, {"a": [1, {"b": 2.5}]}, [0.0], {"a": (1, 2.0)}, {1: "x"},
    {"a": {"b": {"c": [float("nan")]}}},
])
def test_floats_and_non_string_keys_still_refused(payload: object) -> None:
    with pytest.raises(ValidationError):
        canonical_json(payload)


def test_canonical_json_unchanged() -> None:
    assert canonical_json({"b": [1, True, None, "x", {"c": (1, 2)}], "a": {"z": -3}}) == \
        b'{"a":{"z":-3},"b":[1,true,null,"x",{"c":[1,2]}]}'
