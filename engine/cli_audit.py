"""``smartcity audit``: verify, replay, diff, timeline, export, anchor. Reads only."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine import audit
from engine.errors import FieldError, ValidationError

audit_app = typer.Typer(help="For auditors: verify the log, replay, diff, timeline, export.",
                        no_args_is_help=True)
out = Console()
err = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL or SQLite file "
                                              "(default: $SMARTCITY_DATABASE_URL or "
                                              "./smartcity.db).")]
PlanArg = Annotated[str, typer.Argument(help="The plan: PROGRAMME:REGION, e.g. m100-2018:35.02.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store(db: str | None):  # type: ignore[no-untyped-def]
    from engine.store.eventstore import EventStore

    return EventStore(db)


def _json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


@contextmanager
def _progress(label: str, total: int | None) -> Iterator[Any]:
    """A progress bar on a terminal; nothing when output is piped or captured."""
    if not err.is_terminal:
        yield None
        return
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _print_report(report: audit.VerifyReport, as_json: bool, what: str) -> None:
    if as_json:
        _json(report.to_dict())
    elif report.ok:
        out.print(f"ok: {report.events} events in {len(report.heads)} streams verified{what}; "
                  f"combined head {report.combined}", markup=False, soft_wrap=True)
    else:
        first = report.first
        assert first is not None
        err.print(f"BROKEN: {first.describe()}", markup=False, soft_wrap=True)
        for brk in report.breaks[1:]:
            err.print(f"  also: {brk.describe()}", markup=False, soft_wrap=True)
        if report.more_breaks:
            err.print(f"  and {report.more_breaks} later breaks in the streams above",
                      markup=False)
    if not report.ok:
        raise typer.Exit(2)


@audit_app.command("verify")
def verify_cmd(
    plan: Annotated[str | None, typer.Option("--plan", help="Only this plan "
                                             "(PROGRAMME:REGION).")] = None,
    programme: Annotated[str | None, typer.Option("--programme", help="Only this programme's "
                                                  "streams.")] = None,
    anchor: Annotated[Path | None, typer.Option("--anchor", help="A recorded anchor (from "
                                                "`audit anchor`) the log must still match.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Check an export package instead "
                                              "of the database.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute the hash chains; exit 0 when intact, 2 at the first broken event."""
    if file is not None:
        if plan or programme or anchor:
            raise ValidationError(FieldError("file", "--file checks a package on its own; drop "
                                                     "--plan, --programme and --anchor"))
        with _progress("verifying", None) as progress:
            report = audit.verify_export(file, progress)
        _print_report(report, as_json, f" in {file}")
        return
    store = _store(db)
    recorded = audit.load_json_file(anchor, "anchor") if anchor is not None else None
    stream = audit.parse_plan_id(plan) if plan else None
    total = None if stream else store.last_position()
    with _progress("verifying", total) as progress:
        report = audit.verify_store(store, stream_id=stream, programme=programme,
                                    anchor=recorded, progress=progress)
    _print_report(report, as_json, " against the anchor" if recorded else "")


@audit_app.command("anchor")
def anchor_cmd(
    programme: Annotated[str | None, typer.Option("--programme", help="Only this programme's "
                                                  "streams.")] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write the anchor to this file "
                                                "(default: print it).")] = None,
    db: DbOption = None,
) -> None:
    """Print (or save) every stream's head hash and their combined hash, to record elsewhere."""
    anchor = audit.make_anchor(_store(db), programme)
    text = orjson.dumps(anchor, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        out.print(f"anchor of {len(anchor['streams'])} streams written to {output}; combined "
                  f"{anchor['combined']}", markup=False)


@audit_app.command("replay")
def replay_cmd(
    plan: PlanArg,
    at: Annotated[str | None, typer.Option("--at", help="A time (ISO 8601, UTC unless an "
                                           "offset is given) or a date (its end).")] = None,
    version: Annotated[int | None, typer.Option("--version", help="A version of the plan's "
                                                "stream.", min=0)] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The plan's full state as it was at a moment or version."""
    moment = audit.parse_moment(at) if at is not None else None
    state = audit.replay_plan(_store(db), audit.parse_plan_id(plan), version=version, at=moment)
    if as_json:
        _json(state.to_dict())
        return
    from engine.cli import show_plan

    show_plan(state, None)
    if state.approval is not None:
        a = state.approval
        out.print(f"regulation {a.regulation_number or '-'} of {a.regulation_date or '-'}; quick "
                  f"wins in RPJMD: {'yes' if a.quick_wins_in_rpjmd else 'no'}", markup=False)


@audit_app.command("diff")
def diff_cmd(
    plan: PlanArg,
    start: Annotated[str, typer.Option("--from", help="A version number or a time.")],
    end: Annotated[str, typer.Option("--to", help="A version number or a time.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """What changed between two versions or times, field by field, with who and when."""
    stored = audit.stream_events(_store(db), audit.parse_plan_id(plan))
    a = audit.version_at(stored, audit.parse_point(start, "from"))
    b = audit.version_at(stored, audit.parse_point(end, "to"))
    changes = audit.diff(stored, a, b)
    if as_json:
        _json({"plan": plan, "from_version": a, "to_version": b,
               "changes": [c.to_dict() for c in changes]})
        return
    table = Table(title=f"{plan}: version {a} -> {b}, {len(changes)} fields changed")
    for col in ("field", "before", "after", "by", "role", "at (UTC)", "event"):
        table.add_column(col, overflow="fold")
    for c in changes:
        table.add_row(c.path, _cell(c.before), _cell(c.after), c.actor_id, c.actor_role,
                      c.occurred_at[:19].replace("T", " "), f"v{c.version} {c.event_type}")
    out.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:59] + "…"


@audit_app.command("timeline")
def timeline_cmd(
    plan: PlanArg,
    actor: Annotated[str | None, typer.Option("--actor", help="Only this actor.")] = None,
    role: Annotated[str | None, typer.Option("--role", help="Only this role.")] = None,
    event_type: Annotated[list[str] | None, typer.Option("--type", help="Only these event "
                                                         "types (repeatable).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this time or date.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Up to this time or date "
                                              "(a date includes the whole day).")] = None,
    db: DbOption = None,
    fmt: Annotated[str, typer.Option("--format", help="table or jsonl")] = "table",
) -> None:
    """Every event of a plan with actor, role, stage, time and a one-line description."""
    if fmt not in ("table", "jsonl"):
        raise ValidationError(FieldError("format", f"{fmt!r} is not table or jsonl"))
    if role is not None:
        from engine.roles import Role

        if role not in {r.value for r in Role}:
            raise ValidationError(FieldError("role", f"{role!r} is not a role",
                                             fix="one of " + ", ".join(r.value for r in Role)))
    low = audit.parse_moment(since, "since") if since else None
    if low is not None and since and len(since.strip()) == 10:
        low = low.replace(hour=0, minute=0, second=0, microsecond=0)
    high = audit.parse_moment(until, "until") if until else None
    stored = audit.stream_events(_store(db), audit.parse_plan_id(plan))
    entries = audit.timeline(stored, actor=actor, role=role, event_types=event_type or (),
                             since=low, until=high)
    if fmt == "jsonl":
        for e in entries:
            sys.stdout.write(orjson.dumps(e.to_dict()).decode() + "\n")
        return
    table = Table(title=f"{plan}: {len(entries)} events")
    for col in ("v", "time (UTC)", "actor", "role", "stage", "what"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(str(e.version), e.occurred_at[:19].replace("T", " "), e.actor_id,
                      e.actor_role, audit.short_stage(e.stage), e.description)
    out.print(table)


@audit_app.command("export")
def export_cmd(
    plan: Annotated[str | None, typer.Argument(help="The plan (PROGRAMME:REGION); or use "
                                               "--programme.")] = None,
    programme: Annotated[str | None, typer.Option("--programme", help="Every stream of this "
                                                  "programme.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--out", help="Write to this file (default: "
                                                "standard output).")] = None,
    db: DbOption = None,
) -> None:
    """A self-contained audit package anyone can verify (see docs/audit.md)."""
    if fmt not in ("jsonl", "csv"):
        raise ValidationError(FieldError("format", f"{fmt!r} is not jsonl or csv"))
    if not plan and not programme:
        raise ValidationError(FieldError("plan", "give a plan (PROGRAMME:REGION) or --programme"))
    stream = audit.parse_plan_id(plan) if plan else None
    store = _store(db)
    if output is None:
        audit.export(store, sys.stdout, fmt, stream_id=stream, programme=programme)
        return
    tmp = output.with_name(output.name + ".part")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            manifest = audit.export(store, handle, fmt, stream_id=stream, programme=programme)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    out.print(f"{manifest['events']} events of {len(manifest['streams'])} streams written to "
              f"{output}; combined head {manifest['combined']}", markup=False)
