"""The ``smartcity`` command line. Errors print one line and exit non-zero, never a traceback."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
import yaml
from rich.console import Console
from rich.table import Table

from engine.domain.plan import STAGE_LABELS
from engine.errors import FieldError, SmartCityError, ValidationError
from engine.roles import Actor, Role

app = typer.Typer(help="Menuju 100 Smart City masterplan engine.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
programme_app = typer.Typer(help="Programmes (cohorts).", no_args_is_help=True)
region_app = typer.Typer(help="Regions and enrolment.", no_args_is_help=True)
stage_app = typer.Typer(help="Open and complete bimtek stages.", no_args_is_help=True)
form_app = typer.Typer(help="Submit pillar forms.", no_args_is_help=True)
forms_app = typer.Typer(help="Form definitions for UIs and plugin authors.", no_args_is_help=True)
plan_app = typer.Typer(help="Look at plans.", no_args_is_help=True)
quickwin_app = typer.Typer(help="Quick wins (program unggulan).", no_args_is_help=True)
review_app = typer.Typer(help="Expert review and the regent's approval.", no_args_is_help=True)
for sub, name in ((programme_app, "programme"), (region_app, "region"), (stage_app, "stage"),
                  (form_app, "form"), (forms_app, "forms"), (plan_app, "plan"),
                  (quickwin_app, "quickwin"), (review_app, "review")):
    app.add_typer(sub, name=name)

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL or SQLite file "
                                              "(default: $SMARTCITY_DATABASE_URL or "
                                              "./smartcity.db).")]
ActorOption = Annotated[str | None, typer.Option("--actor", help="Who acts (default "
                                                 "$SMARTCITY_ACTOR or the login name).")]
RoleOption = Annotated[Role | None, typer.Option("--role", help="Role acted in (default "
                                                 "$SMARTCITY_ROLE or operator).")]
ActorRegionOption = Annotated[str | None, typer.Option("--as-region", help="Region code a "
                                                       "regional officer or regent acts for.")]
CommandIdOption = Annotated[str | None, typer.Option("--command-id", help="Idempotency key: "
                                                     "a repeated id writes nothing.")]


def handle_errors(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SmartCityError as exc:
            err.print(f"error: {exc}", markup=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except Exception as exc:  # database unreachable, disk full, ...
            from sqlalchemy.exc import SQLAlchemyError

            if isinstance(exc, SQLAlchemyError | OSError):
                msg = str(exc).splitlines()[0]
                err.print(f"error: database: {msg}", markup=False, soft_wrap=True)
                raise typer.Exit(1) from None
            raise
    return wrapper  # type: ignore[return-value]


def make_actor(actor: str | None, role: Role | None, region: str | None) -> Actor:
    from pydantic import ValidationError as PydanticValidationError

    role = role or Role(os.environ.get("SMARTCITY_ROLE", "operator"))
    actor = actor or os.environ.get("SMARTCITY_ACTOR") or getpass.getuser()
    region = region or os.environ.get("SMARTCITY_ACTOR_REGION") or None
    if role not in (Role.REGIONAL_OFFICER, Role.REGENT):
        region = None
    try:
        return Actor(id=actor, role=role, region=region)
    except PydanticValidationError as exc:
        raise ValidationError.from_pydantic(exc, prefix="actor.") from None


def open_engine(db: str | None):  # type: ignore[no-untyped-def]
    from engine.application import Engine

    return Engine(db)


def load_data_file(path: Path) -> Any:
    if not path.exists():
        raise ValidationError(FieldError("file", f"{path} does not exist"))
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValidationError(FieldError("file", f"{path} is not valid "
                                         f"{'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'}"
                                         f": {str(exc).splitlines()[0]}")) from None


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def run_plan_command(db: str | None, actor: Actor, programme: str, region: str, name: str,
                     data: dict[str, Any], command_id: str | None) -> None:
    engine = open_engine(db)
    stored = engine.execute(actor, programme, region, name, data, command_id=command_id)
    for ev in stored:
        out.print(f"recorded {ev.event_type} v{ev.version} on {ev.stream_id}", markup=False)
    if not stored:
        out.print("nothing to record")


# ---------------------------------------------------------------------------- programmes
@programme_app.command("create")
@handle_errors
def programme_create(
    programme_id: Annotated[str, typer.Argument(help="Short id, e.g. m100-2023.")],
    name: Annotated[str, typer.Option(help="Programme name.")],
    year: Annotated[int, typer.Option(help="Cohort year.")],
    regions: Annotated[str, typer.Option(help="Comma-separated Kemendagri codes.")] = "",
    db: DbOption = None, actor: ActorOption = None, role: RoleOption = None,
    command_id: CommandIdOption = None,
) -> None:
    """Create a programme (cohort) with its member regions."""
    codes = [c.strip() for c in regions.split(",") if c.strip()]
    engine = open_engine(db)
    engine.create_programme(make_actor(actor, role, None), programme_id, name, year, codes,
                            command_id=command_id)
    p = engine.programme(programme_id)
    out.print(f"created programme {p.programme_id} ({p.name}, {p.year}) with "
              f"{len(p.region_codes)} regions and pillars {', '.join(p.pillar_ids)}",
              markup=False)


@programme_app.command("add-region")
@handle_errors
def programme_add_region(programme_id: str, region_code: str, db: DbOption = None,
                         actor: ActorOption = None, role: RoleOption = None) -> None:
    """Add a region to a programme."""
    engine = open_engine(db)
    engine.add_region(make_actor(actor, role, None), programme_id, region_code)
    out.print(f"added {region_code} to {programme_id}")


@programme_app.command("show")
@handle_errors
def programme_show(programme_id: str, db: DbOption = None,
                   as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A programme's regions and where each plan stands."""
    from engine.regions import all_regions

    engine = open_engine(db)
    p = engine.programme(programme_id)
    plans = {s.region_code: s for s in engine.plans(programme_id)}
    if as_json:
        print_json({**p.to_dict(), "plans": {c: {"stage": s.stage, "status": s.status}
                                             for c, s in plans.items()}})
        return
    table = Table(title=f"{p.name} ({p.year})")
    for col in ("code", "region", "head", "stage", "status"):
        table.add_column(col)
    regions = all_regions()
    for code in p.region_codes:
        r = regions[code]
        s = plans.get(code)
        table.add_row(code, r.display_name, r.head_title, s.stage if s else "not enrolled",
                      s.status if s else "")
    out.print(table)


@programme_app.command("list")
@handle_errors
def programme_list(db: DbOption = None) -> None:
    """Every programme in the store."""
    for p in open_engine(db).programmes():
        out.print(f"{p.programme_id}\t{p.year}\t{len(p.region_codes)} regions\t{p.name}",
                  markup=False)


# ---------------------------------------------------------------------------- regions
@region_app.command("enrol")
@handle_errors
def region_enrol(programme_id: str, region_code: str, db: DbOption = None,
                 actor: ActorOption = None, role: RoleOption = None,
                 command_id: CommandIdOption = None) -> None:
    """Open the plan of a programme's region."""
    run_plan_command(db, make_actor(actor, role, None), programme_id, region_code,
                     "EnrolRegion", {"programme_id": programme_id, "region_code": region_code},
                     command_id)


@region_app.command("list")
@handle_errors
def region_list(province: Annotated[str | None, typer.Option(help="Filter by province name "
                                                              "or code.")] = None) -> None:
    """The 514 kabupaten and kota with their Kemendagri codes."""
    from engine.regions import all_regions

    table = Table()
    for col in ("code", "name", "kind", "head", "province"):
        table.add_column(col)
    for r in all_regions().values():
        if province and province.lower() not in (r.province.lower(), r.province_code):
            continue
        table.add_row(r.code, r.display_name, r.kind, r.head_title, r.province)
    out.print(table)


# ---------------------------------------------------------------------------- stages
@stage_app.command("start")
@handle_errors
def stage_start(programme_id: str, region_code: str, stage: str, db: DbOption = None,
                actor: ActorOption = None, role: RoleOption = None,
                command_id: CommandIdOption = None) -> None:
    """Open a bimtek stage (bimtek_1 .. bimtek_4) for a region."""
    run_plan_command(db, make_actor(actor, role, None), programme_id, region_code, "StartStage",
                     {"stage": stage}, command_id)


@stage_app.command("complete")
@handle_errors
def stage_complete(programme_id: str, region_code: str, stage: str, db: DbOption = None,
                   actor: ActorOption = None, role: RoleOption = None,
                   command_id: CommandIdOption = None) -> None:
    """Complete a stage; refused, with what is missing, unless every pillar's gate passes."""
    run_plan_command(db, make_actor(actor, role, None), programme_id, region_code,
                     "CompleteStage", {"stage": stage}, command_id)


# ---------------------------------------------------------------------------- forms
@form_app.command("submit")
@handle_errors
def form_submit(
    programme_id: str, region_code: str,
    pillar: Annotated[str, typer.Option(help="Pillar id, e.g. governance.")],
    stage: Annotated[str, typer.Option(help="bimtek_1 .. bimtek_4.")],
    form: Annotated[str, typer.Option(help="Form id, e.g. swot.")],
    file: Annotated[Path, typer.Option("--file", help="The form's data, JSON or YAML.")],
    db: DbOption = None, actor: ActorOption = None, role: RoleOption = None,
    as_region: ActorRegionOption = None, command_id: CommandIdOption = None,
) -> None:
    """Submit a pillar form for the current stage."""
    data = load_data_file(file)
    run_plan_command(db, make_actor(actor, role, as_region), programme_id, region_code,
                     "SubmitForm", {"pillar": pillar, "stage": stage, "form": form, "data": data},
                     command_id)


@forms_app.command("schema")
@handle_errors
def forms_schema(pillar: str, stage: str,
                 form: Annotated[str | None, typer.Argument()] = None) -> None:
    """JSON Schema of a pillar's forms at a stage (one form, or all of them)."""
    from engine.pillars import load_registry

    reg = load_registry()
    if form:
        print_json(reg.form_spec(pillar, stage, form).json_schema())
        return
    if pillar not in reg.pillars:
        raise ValidationError(FieldError("pillar", f"no pillar {pillar!r} is loaded",
                                         fix="one of " + ", ".join(reg.pillars)))
    print_json({s.form: s.json_schema() for s in reg.forms_for(pillar, stage)})


@forms_app.command("list")
@handle_errors
def forms_list() -> None:
    """Every form of every loaded pillar, by stage."""
    from engine.pillars import load_registry

    reg = load_registry()
    table = Table()
    for col in ("pillar", "stage", "form", "required", "title"):
        table.add_column(col)
    for (pillar, stage, form), spec in sorted(reg.forms.items()):
        table.add_row(pillar, stage, form, "yes" if spec.required else "no", spec.title_id)
    out.print(table)


# ---------------------------------------------------------------------------- quick wins
@quickwin_app.command("propose")
@handle_errors
def quickwin_propose(programme_id: str, region_code: str, quick_win_id: str,
                     pillar: Annotated[str, typer.Option()], name: Annotated[str, typer.Option()],
                     agency: Annotated[str, typer.Option()], description: str = "",
                     db: DbOption = None, actor: ActorOption = None, role: RoleOption = None,
                     as_region: ActorRegionOption = None) -> None:
    """Propose a quick win (bimtek II or III)."""
    run_plan_command(db, make_actor(actor, role, as_region), programme_id, region_code,
                     "ProposeQuickWin", {"quick_win_id": quick_win_id, "pillar": pillar,
                                         "name": name, "agency": agency,
                                         "description": description}, None)


@quickwin_app.command("risk")
@handle_errors
def quickwin_risk(programme_id: str, region_code: str, quick_win_id: str, risk_id: str,
                  description: Annotated[str, typer.Option()],
                  likelihood: Annotated[int, typer.Option(help="1-5")],
                  impact: Annotated[int, typer.Option(help="1-5")],
                  handling: Annotated[str, typer.Option()], mitigation: str = "",
                  db: DbOption = None, actor: ActorOption = None, role: RoleOption = None,
                  as_region: ActorRegionOption = None) -> None:
    """Record a risk in a quick win's risk register."""
    run_plan_command(db, make_actor(actor, role, as_region), programme_id, region_code,
                     "RecordQuickWinRisk", {"quick_win_id": quick_win_id, "risk_id": risk_id,
                                            "description": description,
                                            "likelihood": likelihood, "impact": impact,
                                            "handling": handling, "mitigation": mitigation}, None)


@quickwin_app.command("progress")
@handle_errors
def quickwin_progress(programme_id: str, region_code: str, quick_win_id: str,
                      percent: Annotated[int, typer.Argument(help="0-100")], reason: str = "",
                      db: DbOption = None, actor: ActorOption = None, role: RoleOption = None,
                      as_region: ActorRegionOption = None) -> None:
    """Report a quick win's completion percentage."""
    run_plan_command(db, make_actor(actor, role, as_region), programme_id, region_code,
                     "ReportQuickWinProgress", {"quick_win_id": quick_win_id,
                                                "completion_percent": percent,
                                                "reason": reason}, None)


# ---------------------------------------------------------------------------- review
@review_app.command("submit")
@handle_errors
def review_submit(programme_id: str, region_code: str, db: DbOption = None,
                  actor: ActorOption = None, role: RoleOption = None,
                  as_region: ActorRegionOption = None) -> None:
    """Submit a plan whose bimtek IV is complete for review."""
    run_plan_command(db, make_actor(actor, role, as_region), programme_id, region_code,
                     "SubmitForReview", {}, None)


@review_app.command("finding")
@handle_errors
def review_finding(programme_id: str, region_code: str, finding_id: str,
                   text: Annotated[str, typer.Option()], pillar: str | None = None,
                   severity: str = "major", db: DbOption = None, actor: ActorOption = None,
                   role: RoleOption = None) -> None:
    """Record a reviewer's finding."""
    run_plan_command(db, make_actor(actor, role, None), programme_id, region_code,
                     "RecordReviewFinding", {"finding_id": finding_id, "text": text,
                                             "pillar": pillar, "severity": severity}, None)


@review_app.command("pass")
@handle_errors
def review_pass(programme_id: str, region_code: str, db: DbOption = None,
                actor: ActorOption = None, role: RoleOption = None) -> None:
    """Pass the review: the plan goes to the regent."""
    run_plan_command(db, make_actor(actor, role, None), programme_id, region_code,
                     "PassReview", {}, None)


@review_app.command("return")
@handle_errors
def review_return(programme_id: str, region_code: str, reason: Annotated[str, typer.Option()],
                  db: DbOption = None, actor: ActorOption = None,
                  role: RoleOption = None) -> None:
    """Return the plan to bimtek IV for revision (after recording findings)."""
    run_plan_command(db, make_actor(actor, role, None), programme_id, region_code,
                     "ReturnForRevision", {"reason": reason}, None)


@review_app.command("approve")
@handle_errors
def review_approve(programme_id: str, region_code: str,
                   regulation_number: str = "", regulation_date: str | None = None,
                   in_rpjmd: Annotated[bool, typer.Option("--in-rpjmd")] = False,
                   db: DbOption = None, actor: ActorOption = None, role: RoleOption = None,
                   as_region: ActorRegionOption = None) -> None:
    """The regent (Bupati/Walikota) approves the plan."""
    run_plan_command(db, make_actor(actor, role, as_region), programme_id, region_code,
                     "ApproveByRegent", {"regulation_number": regulation_number,
                                         "regulation_date": regulation_date,
                                         "quick_wins_in_rpjmd": in_rpjmd}, None)


@review_app.command("refuse")
@handle_errors
def review_refuse(programme_id: str, region_code: str, reason: Annotated[str, typer.Option()],
                  db: DbOption = None, actor: ActorOption = None, role: RoleOption = None,
                  as_region: ActorRegionOption = None) -> None:
    """The regent refuses: the plan goes back to review."""
    run_plan_command(db, make_actor(actor, role, as_region), programme_id, region_code,
                     "RefuseApproval", {"reason": reason}, None)


# ---------------------------------------------------------------------------- generic
@app.command("command")
@handle_errors
def any_command(programme_id: str, region_code: str,
                name: Annotated[str, typer.Argument(help="e.g. ProposeQuickWin")],
                data: Annotated[str, typer.Option(help="The command's fields as JSON.")] = "{}",
                db: DbOption = None, actor: ActorOption = None, role: RoleOption = None,
                as_region: ActorRegionOption = None, command_id: CommandIdOption = None) -> None:
    """Run any plan command by name with its fields as JSON."""
    try:
        fields = json.loads(data)
    except ValueError as exc:
        raise ValidationError(FieldError("data", f"not valid JSON: {exc}")) from None
    if not isinstance(fields, dict):
        raise ValidationError(FieldError("data", "must be a JSON object"))
    run_plan_command(db, make_actor(actor, role, as_region), programme_id, region_code, name,
                     fields, command_id)


# ---------------------------------------------------------------------------- plans
@plan_app.command("show")
@handle_errors
def plan_show(programme_id: str, region_code: str, db: DbOption = None,
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A plan's current state."""
    engine = open_engine(db)
    state = engine.plan(programme_id, region_code)
    if as_json:
        print_json(state.to_dict())
        return
    show_plan(state, engine)


def show_plan(state: Any, engine: Any) -> None:
    out.print(f"[bold]{state.region_name}[/bold] ({state.region_code}, {state.head_title}) - "
              f"programme {state.programme_id}")
    out.print(f"stage: {STAGE_LABELS[state.stage]} - "
              f"{'in progress' if state.status == 'open' else 'completed'}; version "
              f"{state.version}; review rounds {state.review_round}", markup=False)
    table = Table(title="Forms")
    for col in ("stage", "pillar", "form", "submissions"):
        table.add_column(col)
    for f in sorted(state.forms.values(), key=lambda f: (f.stage, f.pillar, f.form)):
        table.add_row(f.stage, f.pillar, f.form, str(f.submissions))
    out.print(table)
    if state.quick_wins:
        qt = Table(title="Quick wins")
        for col in ("id", "pillar", "name", "agency", "completion", "risks"):
            qt.add_column(col)
        for q in state.quick_wins.values():
            qt.add_row(q.quick_win_id, q.pillar, q.name, q.agency, f"{q.completion_percent}%",
                       str(len(q.risks)))
        out.print(qt)
    for f in state.findings:
        out.print(f"finding {f.finding_id} (round {f.round}, {f.severity}, {f.pillar or 'plan'}):"
                  f" {f.text}", markup=False)
    for q in state.quick_wins.values():
        for who, on, text in ((a.advisor, a.advised_on, a.text) for a in q.advice):
            out.print(f"advice on {q.quick_win_id} by {who} ({on}): {text}", markup=False)
    for x in state.sessions:
        guests = ", ".join(n for n, _ in x.institutions) or "-"
        out.print(f"session {x.stage} on {x.held_on} at {x.venue}: agencies "
                  f"{', '.join(x.agencies)}; guests {guests}", markup=False)
    if state.approval:
        a = state.approval
        out.print(f"approved by {a.head_title} ({a.regent}) {a.regulation_number}"
                  f"{'; quick wins in the RPJMD' if a.quick_wins_in_rpjmd else ''}",
                  markup=False)
    for year, e in sorted(state.evaluations.items()):
        scores = ", ".join(f"{p} {v}" for p, v in e.scores.items()) or "not scored yet"
        out.print(f"evaluation {year}: {len(e.quick_wins)} quick wins, {len(e.indicators)} "
                  f"indicators; maturity {scores}", markup=False)


@app.command("events")
@handle_errors
def events_cmd(programme_id: str, region_code: str, db: DbOption = None,
               fmt: Annotated[str, typer.Option("--format", help="table or jsonl")] = "table") -> None:
    """A plan's event history."""
    if fmt not in ("table", "jsonl"):
        raise ValidationError(FieldError("format", f"{fmt!r} is not table or jsonl"))
    history = open_engine(db).history(programme_id, region_code)
    if fmt == "jsonl":
        for ev in history:
            sys.stdout.write(orjson.dumps({
                "position": ev.position, "stream_id": ev.stream_id, "version": ev.version,
                "event_type": ev.event_type, "schema_version": ev.schema_version,
                "actor_id": ev.actor_id, "actor_role": ev.actor_role,
                "occurred_at": ev.occurred_at, "command_id": ev.command_id,
                "correlation_id": ev.correlation_id, "causation_id": ev.causation_id,
                "hash": ev.hash, "payload": orjson.loads(ev.payload)}).decode() + "\n")
        return
    table = Table()
    for col in ("v", "time (UTC)", "event", "actor", "role", "hash"):
        table.add_column(col)
    for ev in history:
        table.add_row(str(ev.version), ev.occurred_at[:19].replace("T", " "), ev.event_type,
                      ev.actor_id, ev.actor_role, ev.hash[:12])
    out.print(table)


# ---------------------------------------------------------------------------- plugins
@app.command("plugins")
@handle_errors
def plugins_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Loaded pillar plugins: package, version, hooks, forms per stage."""
    from engine.pillars import load_registry

    reg = load_registry()
    rows = []
    for pillar, plugin in reg.owner.items():
        info = reg.plugins[plugin]
        stages: dict[str, list[str]] = {}
        for (p, stage, form) in reg.forms:
            if p == pillar:
                stages.setdefault(stage, []).append(form)
        rows.append({"pillar": pillar, "plugin": plugin, "package": info.package,
                     "version": info.version, "hooks": list(info.hooks), "forms": stages,
                     "indicators": len(reg.indicators_of(pillar))})
    if as_json:
        print_json(rows)
        return
    table = Table()
    for col in ("pillar", "package", "version", "hooks", "forms per stage", "indicators"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["pillar"], r["package"], r["version"], "\n".join(r["hooks"]),
                      "\n".join(f"{s}: {', '.join(f)}" for s, f in sorted(r["forms"].items())),
                      str(r["indicators"]))
    out.print(table)


@app.command("indicators")
@handle_errors
def indicators_cmd(pillar: Annotated[str | None, typer.Argument()] = None) -> None:
    """Indicators of the loaded pillars, with the framework each follows."""
    from engine.pillars import load_registry

    reg = load_registry()
    table = Table()
    for col in ("id", "pillar", "element", "name", "unit", "better", "follows"):
        table.add_column(col)
    for ind in reg.indicators.values():
        if pillar and ind.pillar != pillar:
            continue
        table.add_row(ind.id, ind.pillar, ind.element, ind.name_id, ind.unit, ind.direction,
                      f"{ind.framework} {ind.framework_id}".strip())
    out.print(table)


@app.command("agencies")
def agencies_cmd() -> None:
    """Known agency (OPD) and partner codes for forms."""
    from engine.forms import agencies

    for code, name in agencies().items():
        out.print(f"{code}\t{name}", markup=False)


@app.command("demo")
@handle_errors
def demo_cmd(regions: Annotated[int, typer.Option("--regions", help="How many regions.")] = 50,
             db: DbOption = None,
             seed: Annotated[int, typer.Option(help="Seed of the generated content.")] = 2018,
             ) -> None:
    """Run a real cohort (2018, with Ponorogo, Wonosobo, Mojokerto, Sawahlunto) through every
    stage to the regents' approval with Prefect, and print the summary."""
    from engine.store.database import resolve_url
    from flows.demo import run_demo

    run_demo(resolve_url(db), regions, seed, out)


# ---------------------------------------------------------------------------- projections
projection_app = typer.Typer(help="The cohort progress read model.", no_args_is_help=True)
app.add_typer(projection_app, name="projection")


@projection_app.command("run")
@handle_errors
def projection_run(db: DbOption = None) -> None:
    """Apply the events recorded since the last run."""
    from engine.projections import CohortProjection
    from engine.store.eventstore import EventStore

    projection = CohortProjection(EventStore(db))
    applied = projection.run()
    out.print(f"applied {applied} events; checkpoint at position "
              f"{projection.checkpoint().position}", markup=False)


@projection_app.command("rebuild")
@handle_errors
def projection_rebuild(db: DbOption = None) -> None:
    """Forget the read model and build it again from the whole log (resumable)."""
    from engine.projections import CohortProjection
    from engine.store.eventstore import EventStore

    projection = CohortProjection(EventStore(db))
    applied = projection.rebuild()
    out.print(f"rebuilt from {applied} events", markup=False)


@projection_app.command("status")
@handle_errors
def projection_status(programme: Annotated[str | None, typer.Option("--programme")] = None,
                      db: DbOption = None,
                      as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The read model as it stands, with how far behind the log it is."""
    from engine.projections import CohortProjection
    from engine.store.eventstore import EventStore

    store = EventStore(db)
    projection = CohortProjection(store)
    checkpoint = projection.checkpoint()
    rows = projection.plans(programme)
    behind = store.last_position() - checkpoint.position
    if as_json:
        print_json({"checkpoint": checkpoint.position, "behind": behind, "plans": rows})
        return
    table = Table(title=f"checkpoint {checkpoint.position} ({behind} events behind the log)")
    for col in ("plan", "region", "stage", "status", "review rounds", "findings", "version"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["stream_id"].removeprefix("plan:"), r["region_name"], r["stage"],
                      r["status"], str(r["review_round"]), str(r["findings"]), str(r["version"]))
    out.print(table)


# ---------------------------------------------------------------------------- audit
from engine.cli_audit import audit_app  # noqa: E402

for _command in audit_app.registered_commands:
    _command.callback = handle_errors(_command.callback)  # type: ignore[arg-type]
app.add_typer(audit_app, name="audit")

# ---------------------------------------------------------------------------- calendar
from engine.cli_calendar import calendar_app, overdue_cmd, reminders_app  # noqa: E402

for _sub in (calendar_app, reminders_app):
    for _command in _sub.registered_commands:
        _command.callback = handle_errors(_command.callback)  # type: ignore[arg-type]
app.add_typer(calendar_app, name="calendar")
app.add_typer(reminders_app, name="reminders")
app.command("overdue")(handle_errors(overdue_cmd))

# ---------------------------------------------------------------------------- web
user_app = typer.Typer(help="People who use the HTTP API and the dashboard.",
                       no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
@handle_errors
def user_add(user_id: str, name: Annotated[str, typer.Option("--name")],
             role: Annotated[Role, typer.Option("--role")],
             region: Annotated[str | None, typer.Option("--region", help="For a regional "
                                                        "officer or regent.")] = None,
             db: DbOption = None) -> None:
    """Create a user; prints their API token once (only its hash is stored)."""
    from engine.store.eventstore import EventStore
    from engine.users import add_user

    token = add_user(EventStore(db), user_id, name, role, region)
    out.print(f"user {user_id} ({role.value}{', ' + region if region else ''}) created.",
              markup=False)
    out.print("API token (shown once, keep it safe):", markup=False)
    sys.stdout.write(token + "\n")


@user_app.command("disable")
@handle_errors
def user_disable(user_id: str, db: DbOption = None) -> None:
    """Revoke a user's token."""
    from engine.store.eventstore import EventStore
    from engine.users import disable_user

    disable_user(EventStore(db), user_id)
    out.print(f"user {user_id} disabled", markup=False)


@app.command("serve")
@handle_errors
def serve_cmd(db: DbOption = None,
              host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
              port: Annotated[int, typer.Option("--port")] = 8000) -> None:
    """Serve the HTTP API (OpenAPI at /docs) and the dashboard (at /)."""
    import uvicorn

    from engine.web.api import create_app

    uvicorn.run(create_app(db), host=host, port=port, log_level="info")


# ---------------------------------------------------------------------------- exports
from engine.cli_export import export_app  # noqa: E402

for _command in export_app.registered_commands:
    _command.callback = handle_errors(_command.callback)  # type: ignore[arg-type]
app.add_typer(export_app, name="export")


# ---------------------------------------------------------------------------- evaluation
from engine.cli_evaluate import evaluate_app  # noqa: E402

for _command in evaluate_app.registered_commands:
    _command.callback = handle_errors(_command.callback)  # type: ignore[arg-type]
app.add_typer(evaluate_app, name="evaluate")


def main() -> None:  # pragma: no cover
    app()
