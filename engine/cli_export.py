"""``smartcity export``: the approved masterplan (PDF or HTML) and cohort progress (XLSX)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from engine.errors import FieldError, ValidationError

export_app = typer.Typer(help="Export documents: a region's masterplan (PDF or HTML) and the "
                              "cohort's progress (XLSX).", no_args_is_help=True)
out = Console()

FORMATS = {".pdf": "pdf", ".html": "html", ".htm": "html"}
DbOption = Annotated[str | None, typer.Option("--db", help="Database URL or SQLite file "
                                              "(default: $SMARTCITY_DATABASE_URL or "
                                              "./smartcity.db).")]
OutOption = Annotated[Path, typer.Option("--out", help="The file to write.")]


def _engine(db: str | None):  # type: ignore[no-untyped-def]
    from engine.application import Engine

    return Engine(db)


def _check_out(path: Path, suffixes: tuple[str, ...]) -> None:
    """Refuse, before any work, a path that cannot be written or has the wrong suffix."""
    if path.suffix.lower() not in suffixes:
        raise ValidationError(FieldError("out", f"{path} does not end in "
                                         f"{' or '.join(suffixes)}",
                                         fix=f"name the file like export{suffixes[0]}"))
    if path.exists() and path.is_dir():
        raise ValidationError(FieldError("out", f"{path} is a directory",
                                         fix="give a file name"))
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValidationError(FieldError("out", f"directory {parent} does not exist",
                                         fix="create it first or choose another path"))


def _format(fmt: str | None, path: Path) -> str:
    """``--format``, or the one the file name implies."""
    if fmt is None:
        implied = FORMATS.get(path.suffix.lower())
        if implied is None:
            raise ValidationError(FieldError("format", f"cannot tell the format from {path}",
                                             fix="pass --format pdf or --format html"))
        return implied
    chosen = fmt.strip().lower()
    if chosen not in ("pdf", "html"):
        raise ValidationError(FieldError("format", f"{fmt!r} is not an export format",
                                         fix="use --format pdf or --format html"))
    return chosen


@export_app.command("masterplan")
def export_masterplan(
    programme_id: Annotated[str, typer.Argument(help="The programme (cohort) id.")],
    region_code: Annotated[str, typer.Argument(help="The region's Kemendagri code, e.g. "
                                               "35.02.")],
    out_file: OutOption,
    fmt: Annotated[str | None, typer.Option("--format", help="pdf or html (default: from "
                                            "the --out file name).")] = None,
    draft: Annotated[bool, typer.Option("--draft", help="Export a plan the regent has not "
                                        "approved, marked DRAFT.")] = False,
    db: DbOption = None,
) -> None:
    """Write a region's masterplan, as the regent signs it, to a PDF or HTML file."""
    from engine.exports import build_masterplan, render_html, render_pdf

    chosen = _format(fmt, out_file)
    _check_out(out_file, (".pdf",) if chosen == "pdf" else (".html", ".htm"))
    engine = _engine(db)
    try:
        doc = build_masterplan(engine, programme_id, region_code, draft=draft)
    finally:
        engine.close()
    if chosen == "pdf":
        out_file.write_bytes(render_pdf(doc))
    else:
        out_file.write_text(render_html(doc), encoding="utf-8")
    label = " (DRAFT)" if doc.draft else ""
    out.print(f"wrote {out_file}{label}: masterplan of {doc.cover.region_name} "
              f"({doc.cover.region_code}), plan version {doc.version}, head hash "
              f"{doc.head_hash}", markup=False, soft_wrap=True)


@export_app.command("cohort")
def export_cohort(
    programme_id: Annotated[str, typer.Argument(help="The programme (cohort) id.")],
    out_file: OutOption,
    db: DbOption = None,
) -> None:
    """Write the cohort's progress (regions, quick wins, summary) to an XLSX workbook."""
    from engine.exports import cohort_xlsx

    _check_out(out_file, (".xlsx",))
    engine = _engine(db)
    try:
        out_file.write_bytes(cohort_xlsx(engine, programme_id))
    finally:
        engine.close()
    out.print(f"wrote {out_file}: cohort progress of {programme_id}", markup=False,
              soft_wrap=True)
