"""``smartcity evaluate``: the yearly evaluation of approved plans."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from engine.errors import FieldError, ValidationError

evaluate_app = typer.Typer(help="Yearly evaluation after approval: open, submit, score, "
                                "report.", no_args_is_help=True)
out = Console()

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL or SQLite file.")]
YearOption = Annotated[int, typer.Option("--year", help="The evaluation year.")]
FileOption = Annotated[Path, typer.Option("--file", help="JSON or YAML file with the data.")]


def _engine(db: str | None):  # type: ignore[no-untyped-def]
    from engine.application import Engine

    return Engine(db)


def _data(path: Path) -> dict[str, Any]:
    from engine.cli import load_data_file

    data = load_data_file(path)
    if not isinstance(data, dict):
        raise ValidationError(FieldError("file", f"{path} must hold an object"))
    return data


def _recorded(stored: list[Any]) -> None:
    for ev in stored:
        out.print(f"recorded {ev.event_type} v{ev.version} on {ev.stream_id}", markup=False)


@evaluate_app.command("open")
def evaluate_open(programme_id: str, year: YearOption, db: DbOption = None,
                  actor: Annotated[str | None, typer.Option("--actor")] = None) -> None:
    """Open a year's evaluation for the cohort's approved plans."""
    from engine.cli import make_actor
    from engine.roles import Role

    _recorded(_engine(db).open_evaluation(make_actor(actor, Role.OPERATOR, None),
                                          programme_id, year))


@evaluate_app.command("submit")
def evaluate_submit(
    programme_id: str, region_code: str, year: YearOption, file: FileOption,
    db: DbOption = None,
    actor: Annotated[str | None, typer.Option("--actor")] = None,
    as_region: Annotated[str | None, typer.Option("--as-region", help="Acting as this "
                                                  "region's officer (default: operator).")
                         ] = None,
) -> None:
    """The region's report: quick-win completion with evidence, and indicator values.

    The file holds ``quick_wins: {ID: {completion_percent, evidence}}`` and
    ``indicators: {INDICATOR_ID: "value"}``."""
    from engine.cli import make_actor
    from engine.roles import Role

    role = Role.REGIONAL_OFFICER if as_region else Role.OPERATOR
    data = {**_data(file), "year": year}
    _recorded(_engine(db).execute(make_actor(actor, role, as_region), programme_id,
                                  region_code, "SubmitEvaluation", data))


@evaluate_app.command("score")
def evaluate_score(programme_id: str, region_code: str, year: YearOption, file: FileOption,
                   db: DbOption = None,
                   actor: Annotated[str | None, typer.Option("--actor")] = None) -> None:
    """The expert team's maturity score per pillar (1-5) and findings.

    The file holds ``scores: {PILLAR: 1..5}`` and ``findings: [text, ...]``."""
    from engine.cli import make_actor
    from engine.roles import Role

    data = {**_data(file), "year": year}
    _recorded(_engine(db).execute(make_actor(actor, Role.REVIEWER, None), programme_id,
                                  region_code, "ScoreEvaluation", data))


@evaluate_app.command("report")
def evaluate_report(programme_id: str, year: YearOption, db: DbOption = None,
                    as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Regions compared: quick wins against their schedule, indicator trends, maturity,
    and who is falling behind."""
    from engine.evaluation import evaluation_report

    report = evaluation_report(_engine(db), programme_id, year)
    if as_json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not report["opened"]:
        raise ValidationError(FieldError("year", f"the {year} evaluation of {programme_id} "
                                         "is not open", fix="`smartcity evaluate open`"))
    table = Table(title=f"{programme_id}: evaluation {year}")
    for col in ("region", "submitted", "quick wins done", "behind", "maturity",
                "indicators", "status"):
        table.add_column(col, overflow="fold")
    for r in report["regions"]:
        trends = [i["trend"] for i in r["indicators"]]
        table.add_row(
            f"{r['region_code']} {r['region_name']}", "yes" if r["submitted"] else "no",
            f"{r['mean_completion']}%" if r["mean_completion"] is not None else "-",
            str(sum(1 for q in r["quick_wins"] if q["behind"])),
            str(r["mean_maturity"] or "-"),
            f"{trends.count('improving')} up, {trends.count('worsening')} down",
            "FALLING BEHIND: " + "; ".join(r["reasons"]) if r["behind"] else "on track")
    out.print(table)
    c = report["cohort"]
    out.print(f"{c['submitted']}/{c['approved']} submitted, {c['scored']} scored; mean "
              f"completion {c['mean_completion']}%; maturity by pillar "
              + ", ".join(f"{p} {m}" for p, m in c["mean_maturity_by_pillar"].items()),
              markup=False)
