"""Auditors: verify (with tampering straight in the database), replay, diff, timeline,
export and anchors. On SQLite always, on PostgreSQL when its URL is set."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from engine import audit
from engine import operations as ops
from engine.application import Engine
from engine.chain import event_hash
from engine.cli import app
from engine.errors import NotFound, ValidationError
from engine.pillars import BUILTIN_ORDER, PillarRegistry, load_registry
from tests.helpers import advance_to

PROGRAMME = "m100-2023"
REGION = "35.02"  # Kabupaten Ponorogo
PLAN = f"{PROGRAMME}:{REGION}"
STREAM = f"plan:{PLAN}"
START = datetime(2023, 3, 6, 1, 0, tzinfo=UTC)
runner = CliRunner()


class StepClock:
    """Each reading is one minute after the last: every command gets its own time."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start - timedelta(minutes=1)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def clocked(db_url: str, registry: PillarRegistry) -> Iterator[Engine]:
    eng = Engine(db_url, registry=registry, clock=StepClock())
    yield eng
    eng.close()


@pytest.fixture
def reviewed(clocked: Engine, operator) -> Engine:  # type: ignore[no-untyped-def]
    """A plan that went review -> revision -> review -> approved."""
    advance_to(clocked, operator, PROGRAMME, REGION, "bimtek_4")
    assert ops.close_stage(clocked, PROGRAMME, REGION, "bimtek_4").completed
    ops.review(clocked, PROGRAMME, REGION, return_first=True)
    ops.approve(clocked, PROGRAMME, REGION, 2023)
    return clocked


def behind_the_engines_back(eng: Engine) -> None:
    """Switch off the database's append-only triggers, as an administrator could."""
    with eng.store.engine.begin() as conn:
        if eng.store.is_postgres:
            for table in ("events", "commands"):
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        else:
            for table in ("events", "commands"):
                for action in ("update", "delete"):
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{action}"))


def sql(eng: Engine, statement: str, **params: object) -> None:
    behind_the_engines_back(eng)
    with eng.store.engine.begin() as conn:
        conn.execute(text(statement), params)


def rows(eng: Engine, stream: str = STREAM) -> list[dict]:  # type: ignore[type-arg]
    with eng.store.engine.connect() as conn:
        result = conn.execute(text("SELECT * FROM events WHERE stream_id = :s ORDER BY version"),
                              {"s": stream})
        return [dict(r._mapping) for r in result]


def verify(eng: Engine, **kw: object) -> audit.VerifyReport:
    return audit.verify_store(eng.store, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- verify
@pytest.mark.parametrize("statement", [
    "UPDATE events SET actor_id = 'x' WHERE version = 2",
    "DELETE FROM events WHERE version = 2",
    "UPDATE commands SET last_version = 1",
    "DELETE FROM commands",
])
def test_the_database_itself_refuses_updates_and_deletes(reviewed: Engine,
                                                         statement: str) -> None:
    from sqlalchemy.exc import DBAPIError

    before = audit.make_anchor(reviewed.store)["combined"]
    with pytest.raises(DBAPIError, match="append-only"):
        with reviewed.store.engine.begin() as conn:
            conn.execute(text(statement))
    assert audit.make_anchor(reviewed.store)["combined"] == before
    assert verify(reviewed).ok


def test_clean_log_verifies(reviewed: Engine) -> None:
    report = verify(reviewed)
    assert report.ok, report.breaks
    assert report.events == reviewed.store.last_position()
    assert set(report.heads) == {STREAM, f"programme:{PROGRAMME}"}
    assert verify(reviewed, stream_id=STREAM).ok
    assert verify(reviewed, programme=PROGRAMME).events == report.events


def test_changed_payload_byte_is_detected_at_its_event(reviewed: Engine) -> None:
    row = rows(reviewed)[9]
    payload = row["payload"]
    i = payload.index(":") + 2
    altered = payload[:i] + ("X" if payload[i] != "X" else "Y") + payload[i + 1:]
    sql(reviewed, "UPDATE events SET payload = :p WHERE position = :pos", p=altered,
        pos=row["position"])
    report = verify(reviewed)
    assert not report.ok
    first = report.first
    assert first is not None
    assert (first.stream_id, first.version, first.position) == (STREAM, 10, row["position"])
    assert first.found == row["hash"] and re.fullmatch("[0-9a-f]{64}", first.expected)
    assert first.expected != first.found
    assert len(report.breaks) == 1  # reported once, where it happened


def test_changed_actor_is_detected(reviewed: Engine) -> None:
    row = rows(reviewed)[4]
    sql(reviewed, "UPDATE events SET actor_id = 'someone-else' WHERE position = :pos",
        pos=row["position"])
    first = verify(reviewed).first
    assert first is not None and (first.stream_id, first.version) == (STREAM, 5)
    assert "hash mismatch" in first.reason


def test_deleted_event_is_detected(reviewed: Engine) -> None:
    row = rows(reviewed)[20]
    sql(reviewed, "DELETE FROM events WHERE position = :pos", pos=row["position"])
    first = verify(reviewed).first
    assert first is not None and first.stream_id == STREAM and first.version == 22
    assert "missing" in first.reason


def test_swapped_events_are_detected(reviewed: Engine) -> None:
    a, b = rows(reviewed)[5], rows(reviewed)[6]
    sql(reviewed, "UPDATE events SET version = -1 WHERE position = :p", p=a["position"])
    sql(reviewed, "UPDATE events SET version = :v WHERE position = :p", v=a["version"],
        p=b["position"])
    sql(reviewed, "UPDATE events SET version = :v WHERE position = :p", v=b["version"],
        p=a["position"])
    report = verify(reviewed)
    assert not report.ok and report.first is not None
    assert report.first.version in (a["version"], b["version"])


def test_swapped_contents_of_two_rows_are_detected(reviewed: Engine) -> None:
    a, b = rows(reviewed)[7], rows(reviewed)[8]
    for src, dst in ((a, b), (b, a)):
        sql(reviewed, "UPDATE events SET payload = :pl, event_type = :t, hash = :h "
                      "WHERE position = :p", pl=src["payload"], t=src["event_type"],
            h=src["hash"], p=dst["position"])
    first = verify(reviewed).first
    assert first is not None and first.version == a["version"]


def test_truncated_tail_is_detected_by_the_command_records(reviewed: Engine) -> None:
    last = rows(reviewed)[-1]
    sql(reviewed, "DELETE FROM events WHERE position = :p", p=last["position"])
    report = verify(reviewed)
    assert not report.ok
    assert any("tail was deleted" in b.reason and b.stream_id == STREAM for b in report.breaks)


def test_truncated_tail_with_its_commands_is_caught_by_the_anchor(reviewed: Engine,
                                                                   tmp_path: Path) -> None:
    anchor = audit.make_anchor(reviewed.store)
    tail = rows(reviewed)[-2:]
    for r in tail:
        sql(reviewed, "DELETE FROM events WHERE position = :p", p=r["position"])
        sql(reviewed, "DELETE FROM commands WHERE command_id = :c", c=r["command_id"])
    assert verify(reviewed).ok  # the chain that is left is consistent ...
    report = verify(reviewed, anchor=anchor)  # ... but the anchor remembers its head
    assert not report.ok and report.first is not None
    assert report.first.stream_id == STREAM and "anchor" in report.first.reason


def test_inserted_event_is_detected(reviewed: Engine) -> None:
    last = rows(reviewed)[-1]
    forged = dict(last, version=last["version"] + 1, command_id="forged-1")
    forged["hash"] = event_hash(last["hash"], STREAM, forged["version"], forged["event_type"],
                                forged["schema_version"], forged["actor_id"], forged["actor_role"],
                                forged["occurred_at"], "forged-1", forged["correlation_id"],
                                forged["causation_id"], forged["payload"].encode())
    forged.pop("position")
    cols = ", ".join(forged)
    sql(reviewed, f"INSERT INTO events ({cols}) VALUES ({', '.join(':' + c for c in forged)})",
        **forged)
    first = verify(reviewed).first  # a correctly hashed forgery, but no command wrote it
    assert first is not None and first.version == last["version"] + 1
    assert "behind the engine's back" in first.reason


def test_event_inserted_in_the_middle_is_detected(reviewed: Engine) -> None:
    sql(reviewed, "UPDATE events SET version = version + 1000 WHERE stream_id = :s AND "
                  "version > 30", s=STREAM)
    sql(reviewed, "UPDATE events SET version = version - 999 WHERE stream_id = :s AND "
                  "version > 1000", s=STREAM)
    extra = dict(rows(reviewed)[3], version=31)
    extra.pop("position")
    sql(reviewed, f"INSERT INTO events ({', '.join(extra)}) VALUES "
                  f"({', '.join(':' + c for c in extra)})", **extra)
    report = verify(reviewed)  # the log is read in commit order: v32 now follows v30 ...
    assert report.first is not None and report.first.version == 32
    assert "missing before it" in report.first.reason
    assert report.more_breaks > 0  # every renumbered event after it breaks too
    assert not verify(reviewed, stream_id=STREAM).ok


def test_rewritten_tail_passes_the_chain_but_not_the_anchor(reviewed: Engine) -> None:
    anchor = audit.make_anchor(reviewed.store)
    history = rows(reviewed)
    prev = history[-3]["hash"]
    for r in history[-2:]:  # an attacker who knows the hash rewrites the last two events
        actor = "kepala-daerah-palsu" if r is history[-1] else r["actor_id"]
        digest = event_hash(prev, STREAM, r["version"], r["event_type"], r["schema_version"],
                            actor, r["actor_role"], r["occurred_at"], r["command_id"],
                            r["correlation_id"], r["causation_id"], r["payload"].encode())
        sql(reviewed, "UPDATE events SET actor_id = :a, hash = :h WHERE position = :p",
            a=actor, h=digest, p=r["position"])
        prev = digest
    assert verify(reviewed).ok
    report = verify(reviewed, anchor=anchor)
    assert not report.ok and report.first is not None
    assert report.first.version == history[-1]["version"]
    assert "anchor" in report.first.reason


def test_anchor_still_holds_after_the_stream_grows(reviewed: Engine) -> None:
    anchor = audit.make_anchor(reviewed.store, PROGRAMME)
    reviewed.execute(ops.officer_of(REGION), PROGRAMME, REGION, "ReportQuickWinProgress",
                     {"quick_win_id": next(iter(reviewed.plan(PROGRAMME, REGION).quick_wins)),
                      "completion_percent": 100})
    assert verify(reviewed, anchor=anchor).ok
    anchor["streams"][STREAM]["hash"] = "0" * 64
    with pytest.raises(ValidationError, match="anchor itself was altered"):
        verify(reviewed, anchor=anchor)


def test_cli_verify_exit_codes_and_first_break(reviewed: Engine, db_url: str,
                                               tmp_path: Path) -> None:
    ok = runner.invoke(app, ["audit", "verify", "--db", db_url])
    assert ok.exit_code == 0, ok.output
    assert "ok:" in ok.output
    anchor_file = tmp_path / "anchor.json"
    assert runner.invoke(app, ["audit", "anchor", "--db", db_url, "--out",
                               str(anchor_file)]).exit_code == 0
    row = rows(reviewed)[2]
    sql(reviewed, "UPDATE events SET occurred_at = '2023-01-01T00:00:00.000000Z' "
                  "WHERE position = :p", p=row["position"])
    bad = runner.invoke(app, ["audit", "verify", "--db", db_url, "--json"])
    assert bad.exit_code == 2
    report = json.loads(bad.output)
    assert report["breaks"][0]["stream_id"] == STREAM and report["breaks"][0]["version"] == 3
    assert report["breaks"][0]["found"] == row["hash"]
    one = runner.invoke(app, ["audit", "verify", "--plan", PLAN, "--db", db_url,
                              "--anchor", str(anchor_file)])
    assert one.exit_code == 2 and f"{STREAM} v3" in one.output
    nonsense = runner.invoke(app, ["audit", "verify", "--plan", "35.02", "--db", db_url])
    assert nonsense.exit_code == 1 and "PROGRAMME:REGION" in nonsense.output


# ---------------------------------------------------------------------------- replay
def test_replay_by_version_and_time(reviewed: Engine) -> None:
    history = reviewed.history(PROGRAMME, REGION)
    returned = next(e for e in history if e.event_type == "ReturnedForRevision")
    state = audit.replay_plan(reviewed.store, STREAM, version=returned.version)
    assert (state.stage, state.status, state.review_round) == ("bimtek_4", "open", 1)
    assert [f.round for f in state.findings] == [1] and state.approval is None
    at = datetime.fromisoformat(returned.occurred_at.replace("Z", "+00:00"))
    assert audit.replay_plan(reviewed.store, STREAM, at=at) == state
    # just before: still in review
    before = audit.replay_plan(reviewed.store, STREAM, at=at - timedelta(seconds=1))
    assert before.stage == "review"
    with pytest.raises(NotFound, match="did not exist yet"):
        audit.replay_plan(reviewed.store, STREAM, at=START - timedelta(days=1))
    final = audit.replay_plan(reviewed.store, STREAM)
    assert final == reviewed.plan(PROGRAMME, REGION)


def test_replay_does_not_depend_on_the_loaded_pillars(reviewed: Engine, db_url: str) -> None:
    """A plan replays the same after a pillar plugin is removed."""
    fewer = load_registry(only=[p for p in BUILTIN_ORDER if p != "governance"])
    other = Engine(db_url, registry=fewer)
    try:
        for v in (5, 40, other.store.stream_version(STREAM)):
            assert other.replay(STREAM, version=v) == reviewed.replay(STREAM, version=v)
        assert other.plan(PROGRAMME, REGION).forms_of("governance")
    finally:
        other.close()


def test_cli_replay_json_and_text(reviewed: Engine, db_url: str) -> None:
    result = runner.invoke(app, ["audit", "replay", PLAN, "--version", "3", "--json",
                                 "--db", db_url])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["version"], data["stage"]) == (3, "bimtek_1")
    at = (START + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    shown = runner.invoke(app, ["audit", "replay", PLAN, "--at", at, "--db", db_url])
    assert shown.exit_code == 0 and "Kabupaten Ponorogo" in shown.output
    both = runner.invoke(app, ["audit", "replay", PLAN, "--at", at, "--version", "2",
                               "--db", db_url])
    assert both.exit_code == 1 and "not both" in both.output
    bad = runner.invoke(app, ["audit", "replay", PLAN, "--at", "yesterday", "--db", db_url])
    assert bad.exit_code == 1 and "at" in bad.output


# ---------------------------------------------------------------------------- diff
def test_diff_across_review_revision_review_approval(reviewed: Engine) -> None:
    stored = reviewed.history(PROGRAMME, REGION)
    submitted = next(e for e in stored if e.event_type == "SubmittedForReview")
    changes = {c.path: c for c in audit.diff(stored, submitted.version - 1, stored[-1].version)}
    stage = changes["stage"]
    assert (stage.before, stage.after) == ("bimtek_4", "approved")
    assert (stage.event_type, stage.actor_id, stage.actor_role) == (
        "ApprovedByRegent", "kepala-daerah-35.02", "regent")
    assert (changes["review_round"].before, changes["review_round"].after) == (0, 2)
    finding = changes["findings[0].text"]
    assert finding.before is None and finding.actor_role == "reviewer"
    assert changes["approval.regent"].after == "kepala-daerah-35.02"
    assert "status" not in changes  # done before, done after
    # a version range with nothing in it changes nothing
    assert audit.diff(stored, 10, 10) == []
    with pytest.raises(ValidationError, match="swap"):
        audit.diff(stored, 12, 3)


def test_cli_diff_by_time(reviewed: Engine, db_url: str) -> None:
    stored = reviewed.history(PROGRAMME, REGION)
    returned = next(e for e in stored if e.event_type == "ReturnedForRevision")
    result = runner.invoke(app, ["audit", "diff", PLAN, "--from", str(returned.version - 1),
                                 "--to", returned.occurred_at, "--json", "--db", db_url])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["to_version"] == returned.version
    [stage] = [c for c in data["changes"] if c["field"] == "stage"]
    assert (stage["before"], stage["after"], stage["role"]) == ("review", "bimtek_4", "reviewer")
    assert stage["at"] == returned.occurred_at


# ---------------------------------------------------------------------------- timeline
def test_timeline_of_a_plan_returned_once(reviewed: Engine) -> None:
    stored = reviewed.history(PROGRAMME, REGION)
    entries = audit.timeline(stored)
    assert [e.version for e in entries] == [e.version for e in stored]
    kinds = [e.event_type for e in entries]
    review_part = [k for k in kinds if k in ("SubmittedForReview", "ReturnedForRevision",
                                             "ReviewPassed", "ApprovedByRegent")]
    assert review_part == ["SubmittedForReview", "ReturnedForRevision", "SubmittedForReview",
                           "ReviewPassed", "ApprovedByRegent"]
    returned = entries[kinds.index("ReturnedForRevision")]
    assert returned.stage == "bimtek_4" and returned.actor_role == "reviewer"
    assert returned.description.startswith("returned for revision by tenaga-ahli-kominfo")
    reopened = entries[kinds.index("ReturnedForRevision") + 1]
    assert reopened.stage == "bimtek_4" and "submitted for Bimtek IV" in reopened.description
    assert entries[-1].description.startswith("approved by the Bupati")
    assert entries[-1].stage == "approved"
    reviewer = audit.timeline(stored, role="reviewer")
    assert reviewer and {e.actor_role for e in reviewer} == {"reviewer"}
    assert len(audit.timeline(stored, actor="kepala-daerah-35.02")) == 1
    only = audit.timeline(stored, event_types=["ReviewFindingRecorded", "ReviewPassed"])
    assert [e.event_type for e in only] == ["ReviewFindingRecorded", "ReviewPassed"]
    t3, t6 = stored[2].occurred_at, stored[5].occurred_at
    window = audit.timeline(stored, since=audit.parse_moment(t3), until=audit.parse_moment(t6))
    assert {e.occurred_at for e in window} <= {e.occurred_at for e in stored if t3 <= e.occurred_at <= t6}
    assert window[0].occurred_at == t3 and window[-1].occurred_at == t6
    with pytest.raises(ValidationError, match="unknown event type"):
        audit.timeline(stored, event_types=["Approved"])


def test_cli_timeline_filters(reviewed: Engine, db_url: str) -> None:
    result = runner.invoke(app, ["audit", "timeline", PLAN, "--role", "regent", "--format",
                                 "jsonl", "--db", db_url])
    assert result.exit_code == 0, result.output
    [line] = [json.loads(x) for x in result.output.splitlines()]
    assert line["event_type"] == "ApprovedByRegent" and line["stage"] == "approved"
    table = runner.invoke(app, ["audit", "timeline", PLAN, "--db", db_url, "--since",
                                "2023-03-06"])
    total = len(reviewed.history(PROGRAMME, REGION))
    assert table.exit_code == 0 and f"{PLAN}: {total} events" in table.output
    none = runner.invoke(app, ["audit", "timeline", PLAN, "--db", db_url, "--until",
                               "2023-03-05", "--format", "jsonl"])
    assert none.exit_code == 0 and none.output == ""
    bad = runner.invoke(app, ["audit", "timeline", PLAN, "--role", "king", "--db", db_url])
    assert bad.exit_code == 1 and "role" in bad.output


# ---------------------------------------------------------------------------- export
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_verifies_without_the_database(reviewed: Engine, db_url: str, tmp_path: Path,
                                              fmt: str) -> None:
    plan_file = tmp_path / f"plan.{fmt}"
    result = runner.invoke(app, ["audit", "export", PLAN, "--format", fmt, "--out",
                                 str(plan_file), "--db", db_url])
    assert result.exit_code == 0, result.output
    report = audit.verify_export(plan_file)
    assert report.ok, report.breaks
    assert report.events == reviewed.store.stream_version(STREAM)
    programme_file = tmp_path / f"programme.{fmt}"
    assert runner.invoke(app, ["audit", "export", "--programme", PROGRAMME, "--format", fmt,
                               "--out", str(programme_file), "--db", db_url]).exit_code == 0
    whole = audit.verify_export(programme_file)
    assert whole.ok and set(whole.heads) == {STREAM, f"programme:{PROGRAMME}"}
    assert whole.combined == audit.make_anchor(reviewed.store, PROGRAMME)["combined"]
    checked = runner.invoke(app, ["audit", "verify", "--file", str(plan_file)])
    assert checked.exit_code == 0, checked.output


def _tampered(path: Path, how: str) -> Path:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    body = 2 if lines[0].startswith("#") else 1  # csv has a column header after the manifest
    if how == "byte":
        i = body + 5
        lines[i] = lines[i].replace("bimtek", "bimtex", 1)
    elif how == "drop":
        del lines[body + 7]
    elif how == "tail":
        del lines[-1]
    elif how == "swap":
        lines[body + 3], lines[body + 4] = lines[body + 4], lines[body + 3]
    elif how == "actor":
        i = body + 6
        lines[i] = lines[i].replace("diskominfo-35.02", "diskominfo-35.03", 1)
    out = path.with_name(f"{how}-{path.name}")
    out.write_text("".join(lines), encoding="utf-8")
    return out


@pytest.mark.parametrize("how", ["byte", "drop", "tail", "swap", "actor"])
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_tampered_export_is_detected(reviewed: Engine, tmp_path: Path, fmt: str,
                                     how: str) -> None:
    path = tmp_path / f"plan.{fmt}"
    with path.open("w", encoding="utf-8", newline="") as handle:
        audit.export(reviewed.store, handle, fmt, stream_id=STREAM)
    assert audit.verify_export(path).ok
    bad = _tampered(path, how)
    assert bad.read_text() != path.read_text()
    assert not audit.verify_export(bad).ok
    result = runner.invoke(app, ["audit", "verify", "--file", str(bad)])
    assert result.exit_code == 2 and "BROKEN" in result.output


def test_export_is_checked_by_the_standalone_verifier_in_the_docs(reviewed: Engine,
                                                                   tmp_path: Path) -> None:
    """docs/audit.md gives outsiders a stdlib-only verifier; it must agree with ours."""
    docs = (Path(__file__).parents[1] / "docs" / "audit.md").read_text(encoding="utf-8")
    [script] = re.findall(r"```python verify_export\.py\n(.*?)```", docs, flags=re.S)
    verifier = tmp_path / "verify_export.py"
    verifier.write_text(script, encoding="utf-8")
    for fmt in ("jsonl", "csv"):
        path = tmp_path / f"plan.{fmt}"
        with path.open("w", encoding="utf-8", newline="") as handle:
            audit.export(reviewed.store, handle, fmt, programme=PROGRAMME)
        good = subprocess.run([sys.executable, str(verifier), str(path)], capture_output=True,
                              text=True, check=False)
        assert good.returncode == 0, good.stdout + good.stderr
        assert "OK" in good.stdout
        for how in ("byte", "drop", "tail"):
            bad = subprocess.run([sys.executable, str(verifier), str(_tampered(path, how))],
                                 capture_output=True, text=True, check=False)
            assert bad.returncode == 1, (fmt, how, bad.stdout)


def test_export_and_verify_refuse_bad_input(reviewed: Engine, db_url: str,
                                            tmp_path: Path) -> None:
    none = runner.invoke(app, ["audit", "export", "--db", db_url])
    assert none.exit_code == 1 and "PROGRAMME:REGION" in none.output
    fmt = runner.invoke(app, ["audit", "export", PLAN, "--format", "xml", "--db", db_url])
    assert fmt.exit_code == 1 and "format" in fmt.output
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\n")
    result = runner.invoke(app, ["audit", "verify", "--file", str(junk)])
    assert result.exit_code == 1 and "manifest" in result.output
    missing = runner.invoke(app, ["audit", "verify", "--file", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1 and "cannot read" in missing.output


# ---------------------------------------------------------------------------- property
STEPS = ("advance", "fill", "close", "propose", "progress", "risk", "submit", "finding",
         "return", "pass", "refuse", "approve")


def _step(eng: Engine, name: str, n: int) -> None:
    """One operator, officer, reviewer or regent action; refused ones write nothing."""
    from engine.domain import plan as P

    state = eng.plan(PROGRAMME, REGION)
    officer, regent = ops.officer_of(REGION), ops.regent_of(REGION)
    qws = sorted(state.quick_wins)
    if name == "advance" and state.status == "done" and state.stage in P.BIMTEK_STAGES[:-1] + (
            "enrolled",):
        ops.open_stage(eng, PROGRAMME, REGION, P.STAGES[P.STAGES.index(state.stage) + 1])
    elif name == "fill":
        ops.fill_stage(eng, PROGRAMME, REGION, state.stage, seed=n)
    elif name == "close":
        ops.close_stage(eng, PROGRAMME, REGION, state.stage)
    elif name == "propose":
        eng.execute(officer, PROGRAMME, REGION, P.ProposeQuickWin(
            quick_win_id=f"QW-{n}", pillar="economy", name=f"Pasar digital {n}",
            agency="Dinas Koperasi dan UKM"))
    elif name == "progress" and qws:
        eng.execute(officer, PROGRAMME, REGION, P.ReportQuickWinProgress(
            quick_win_id=qws[n % len(qws)], completion_percent=n % 101, reason="revisi"))
    elif name == "risk" and qws:
        eng.execute(officer, PROGRAMME, REGION, P.RecordQuickWinRisk(
            quick_win_id=qws[n % len(qws)], risk_id=f"R{n}", description="Anggaran terlambat",
            likelihood=1 + n % 5, impact=1 + (n // 5) % 5, handling="mitigate",
            mitigation="Ajukan di APBD perubahan"))
    elif name == "submit":
        eng.execute(officer, PROGRAMME, REGION, P.SubmitForReview())
    elif name == "finding":
        eng.execute(ops.REVIEWER, PROGRAMME, REGION, P.RecordReviewFinding(
            finding_id=f"F{n}", pillar="living", severity="minor", text="Lengkapi data"))
    elif name == "return":
        eng.execute(ops.REVIEWER, PROGRAMME, REGION, P.ReturnForRevision(reason="Perbaiki"))
    elif name == "pass":
        eng.execute(ops.REVIEWER, PROGRAMME, REGION, P.PassReview())
    elif name == "refuse":
        eng.execute(regent, PROGRAMME, REGION, P.RefuseApproval(reason="Belum sesuai RPJMD"))
    elif name == "approve":
        ops.approve(eng, PROGRAMME, REGION, 2023)


def test_replay_at_every_version_equals_what_live_code_held(registry: PillarRegistry,
                                                            tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from engine.errors import SmartCityError

    step = st.tuples(st.sampled_from(STEPS), st.integers(0, 200))
    cycle = [("advance", 0), ("fill", 0), ("close", 0)]
    prefixes = [cycle * d for d in range(5)] + [
        cycle * 4 + [("submit", 0)],
        cycle * 4 + [("submit", 0), ("pass", 0), ("approve", 0)],
        cycle * 4 + [("submit", 0), ("finding", 1), ("return", 0), ("fill", 1), ("close", 0),
                     ("submit", 0), ("pass", 0), ("refuse", 0)],
    ]
    # A run first reaches some point of the programme (each bimtek stage, review, approval,
    # a revision and a refusal), then takes random actions: valid and refused ones.
    script = st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(prefixes),
                       st.lists(step, max_size=25))

    @settings(max_examples=12, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(script)
    def run(steps: list[tuple[str, int]]) -> None:
        path = tmp_path_factory.mktemp("prop") / "events.db"
        eng = Engine(f"sqlite:///{path}", registry=registry, clock=StepClock())
        try:
            eng.create_programme(ops.FLOW_OPERATOR, PROGRAMME, "Menuju 100", 2023, [REGION])
            ops.enrol(eng, PROGRAMME, REGION)
            live = {1: eng.plan(PROGRAMME, REGION)}
            for name, n in steps:
                try:
                    _step(eng, name, n)
                except SmartCityError:
                    pass  # refused: nothing written, nothing to compare
                state = eng.plan(PROGRAMME, REGION)
                live[state.version] = state
            stored = eng.history(PROGRAMME, REGION)
            for version, state in live.items():
                assert audit.replay_plan(eng.store, STREAM, version=version) == state
                at = audit.parse_moment(stored[version - 1].occurred_at)
                assert audit.replay_plan(eng.store, STREAM, at=at) == state
                assert eng.replay(STREAM, version=version).to_dict() == state.to_dict()
            assert audit.verify_store(eng.store).ok
        finally:
            eng.close()

    run()
