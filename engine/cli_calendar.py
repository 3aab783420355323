"""``smartcity calendar``, ``smartcity overdue`` and ``smartcity reminders``."""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from engine.errors import FieldError, ValidationError

calendar_app = typer.Typer(help="The programme's schedule: bimtek sessions and deadlines.",
                           no_args_is_help=True)
reminders_app = typer.Typer(help="Deadline reminders (sent once per deadline).",
                            no_args_is_help=True)
out = Console()

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL or SQLite file.")]
AsOfOption = Annotated[str | None, typer.Option("--as-of", help="The day to judge from "
                                                "(YYYY-MM-DD; default: today).")]


def _engine(db: str | None):  # type: ignore[no-untyped-def]
    from engine.application import Engine

    return Engine(db)


def _day(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(FieldError(name, f"{text!r} is not a date",
                                         fix="write YYYY-MM-DD, e.g. 2026-03-31")) from None


def _json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


@calendar_app.command("show")
def calendar_show(programme_id: str, db: DbOption = None,
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each stage's session dates, venue and deadline."""
    state = _engine(db).programme(programme_id)
    rows = state.to_dict()["schedule"]
    if as_json:
        _json(rows)
        return
    table = Table(title=f"{state.name} ({programme_id})")
    for col in ("stage", "session", "venue", "deadline", "moved"):
        table.add_column(col)
    for r in rows:
        session = f"{r['session_start']} - {r['session_end']}" if r["session_start"] else "-"
        table.add_row(r["stage"], session, r["venue"] or "-", r["deadline"],
                      str(r["changes"]) if r["changes"] else "")
    out.print(table)
    if not rows:
        out.print("nothing scheduled yet: `smartcity calendar set`")


@calendar_app.command("set")
def calendar_set(
    programme_id: str,
    stage: Annotated[str, typer.Argument(help="bimtek_1..bimtek_4, review or approval")],
    deadline: Annotated[str, typer.Option("--deadline", help="YYYY-MM-DD")],
    session_start: Annotated[str | None, typer.Option("--session-start")] = None,
    session_end: Annotated[str | None, typer.Option("--session-end")] = None,
    venue: Annotated[str, typer.Option("--venue")] = "",
    reason: Annotated[str, typer.Option("--reason", help="Why it moves (needed when "
                                        "rescheduling).")] = "",
    db: DbOption = None,
    actor: Annotated[str | None, typer.Option("--actor")] = None,
) -> None:
    """Schedule (or move) a stage's session and deadline; a move records who and why."""
    from engine.cli import make_actor
    from engine.roles import Role

    data: dict[str, Any] = {"stage": stage, "deadline": deadline, "venue": venue,
                            "reason": reason}
    if session_start is not None:
        data["session_start"] = session_start
    if session_end is not None:
        data["session_end"] = session_end
    stored = _engine(db).schedule_stage(make_actor(actor, Role.OPERATOR, None), programme_id,
                                        data)
    for ev in stored:
        out.print(f"recorded {ev.event_type} v{ev.version} on {ev.stream_id}", markup=False)


def overdue_cmd(
    programme: Annotated[str | None, typer.Option("--programme", help="One programme "
                                                  "(default: all).")] = None,
    as_of: AsOfOption = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Each region behind schedule: stage, deadline, days late and what is missing."""
    from engine.calendar import overdue

    engine = _engine(db)
    day = _day(as_of, "as_of")
    ids = [programme] if programme else [p.programme_id for p in engine.programmes()]
    late = {pid: overdue(engine, pid, day) for pid in ids}
    if as_json:
        _json({pid: [o.to_dict() for o in rows] for pid, rows in late.items()})
        return
    for pid, rows in late.items():
        table = Table(title=f"{pid}: {len(rows)} regions behind schedule")
        for col in ("region", "stage", "deadline", "days late", "missing"):
            table.add_column(col, overflow="fold")
        for o in rows:
            missing = "; ".join(f"{p}: {', '.join(m)}" for p, m in o.missing.items())
            table.add_row(f"{o.region_code} {o.region_name}", o.stage, o.deadline.isoformat(),
                          str(o.days_late), missing)
        out.print(table)


@reminders_app.command("send")
def reminders_send(programme_id: str, as_of: AsOfOption = None, db: DbOption = None) -> None:
    """Send the reminders due now (each deadline's reminder once, whatever the re-runs)."""
    from engine.calendar import send_reminders

    result = send_reminders(_engine(db), programme_id, _day(as_of, "as_of"))
    out.print(f"sent {len(result.sent)}, already sent {len(result.already_sent)}, "
              f"failed {len(result.failed)}", markup=False)
    for key, error in result.failed.items():
        out.print(f"failed {key}: {error}", markup=False)


@reminders_app.command("list")
def reminders_list(programme_id: str, db: DbOption = None) -> None:
    """The outbox: every reminder recorded, and when it was sent."""
    from engine.calendar import outbox

    table = Table(title=f"{programme_id}: reminders")
    for col in ("region", "stage", "deadline", "kind", "sent", "message"):
        table.add_column(col, overflow="fold")
    for r in outbox(_engine(db), programme_id):
        table.add_row(r["region_code"], r["stage"], r["deadline"], r["kind"],
                      (r["sent_at"] or "pending")[:19], r["message"])
    out.print(table)
