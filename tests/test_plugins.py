"""Pillar plugins: the conformance kit on the built-in pillars and on broken plugins,
replacing a built-in pillar, and the example mobility pillar installed by entry point and
run through a whole plan."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field
from typer.testing import CliRunner

from engine import audit, hookimpl
from engine import operations as ops
from engine.application import Engine
from engine.cli import app
from engine.domain.plan import BIMTEK_STAGES, PlanState, plan_stream
from engine.domain.programme import PillarRef
from engine.errors import FieldError, PluginError, TransitionError, ValidationError
from engine.forms import Form, StandardPillar
from engine.pillars import (
    BUILTIN_ORDER,
    ElementSpec,
    FormSpec,
    IndicatorSpec,
    PillarRegistry,
    PillarSpec,
    load_registry,
)
from engine.reports import cohort_report
from engine.roles import Actor, Role
from engine.testing import PluginConformanceError, check_pillar_plugin, pillar_plugin_problems
from tests.helpers import advance_to

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "smartcity-mobility"
WITH_MOBILITY = (*BUILTIN_ORDER, "mobility")
OPERATOR = Actor(id="op-kominfo", role=Role.OPERATOR)
runner = CliRunner()


def builtin(name: str) -> StandardPillar:
    return importlib.import_module(f"plugins.{name}").PILLAR


def builtins() -> list[tuple[str, Any]]:
    return [(n, builtin(n)) for n in BUILTIN_ORDER]


# ---------------------------------------------------------------------- the built-in pillars
@pytest.mark.parametrize("name", BUILTIN_ORDER)
def test_builtin_pillar_passes_the_conformance_kit(name: str) -> None:
    check_pillar_plugin(builtin(name), name=name)


# ---------------------------------------------------------------------- a small good plugin
WATER = PillarSpec(id="water", name_id="Air Cerdas", name_en="Smart Water", elements=(
    ElementSpec(id="supply", name_id="Penyediaan air minum", name_en="Water supply"),
    ElementSpec(id="drainage", name_id="Drainase", name_en="Drainage")))
WATER_INDICATOR = IndicatorSpec(
    id="WAT-01", pillar="water", element="supply", unit="%", direction="higher",
    name_id="Persentase penduduk yang mendapat layanan air minum",
    name_en="Percentage of city population with potable water supply service",
    framework="ISO 37120:2014", framework_id="21.1")


class WaterBaseline(Form):
    year: int = Field(ge=2010, le=2100)
    served_percent: int = Field(ge=0, le=100)


def example_water(plan: PlanState, rng: Any) -> dict[str, Any]:
    return {"year": plan.programme_year - 1, "served_percent": rng.randrange(40, 100)}


WATER_FORM = FormSpec(pillar="water", stage="bimtek_1", form="water_baseline",
                      model=WaterBaseline, title_id="Data dasar air minum",
                      title_en="Water baseline", example=example_water)


class Water:
    """A minimal conforming pillar plugin; each broken variant below changes one thing."""

    spec: Any = WATER
    indicator: Any = WATER_INDICATOR
    form: Any = WATER_FORM

    @hookimpl
    def register_pillars(self, register: Callable[[Any], None]) -> None:
        register(self.spec)

    @hookimpl
    def register_indicators(self, register: Callable[[Any], None]) -> None:
        register(self.indicator)

    @hookimpl
    def register_forms(self, register: Callable[[Any], None]) -> None:
        register(self.form)

    @hookimpl
    def validate_form(self, pillar: str, stage: str, form: str, data: dict[str, Any],
                      plan: PlanState) -> Any:
        if pillar != "water":
            return None
        if data["year"] > plan.programme_year:
            return [FieldError("year", "after the programme year", pillar="water", form=form)]
        return []

    @hookimpl
    def stage_gate(self, pillar: str, stage: str, plan: PlanState) -> Any:
        return None if pillar != "water" else []


def test_a_minimal_plugin_conforms_alone_and_next_to_the_builtins() -> None:
    assert pillar_plugin_problems(Water(), name="water") == []
    check_pillar_plugin(Water(), name="water", alongside=builtins())


# ---------------------------------------------------------------------- broken plugins
class RaisesInRegister(Water):
    @hookimpl
    def register_forms(self, register: Callable[[Any], None]) -> None:
        raise RuntimeError("forms.yaml not found")


class RaisesInValidate(Water):
    @hookimpl
    def validate_form(self, pillar: str, stage: str, form: str, data: dict[str, Any],
                      plan: PlanState) -> Any:
        counts: dict[str, int] = {}
        return counts["served"]  # a bug: KeyError for every pillar


class RaisesInGate(Water):
    @hookimpl
    def stage_gate(self, pillar: str, stage: str, plan: PlanState) -> Any:
        raise ZeroDivisionError("division by zero")


class WrongPillarType(Water):
    spec = {"id": "water", "name_id": "Air Cerdas"}  # a dict, not a PillarSpec


class WrongFormType(Water):
    form = WATER_INDICATOR  # an IndicatorSpec handed to register_forms


class ForeignIndicator(Water):
    indicator = WATER_INDICATOR.model_copy(update={"id": "WAT-09", "pillar": "living",
                                                   "element": "health"})


class FutureContract(Water):
    spec = WATER.model_copy(update={"contract": 2})


class MisspelledHook(Water):
    @hookimpl
    def register_form(self, register: Callable[[Any], None]) -> None:  # not a hook
        register(self.form)


class BadAnswers(Water):
    @hookimpl
    def validate_form(self, pillar: str, stage: str, form: str, data: dict[str, Any],
                      plan: PlanState) -> Any:
        return "looks fine" if pillar == "water" else None

    @hookimpl
    def stage_gate(self, pillar: str, stage: str, plan: PlanState) -> Any:
        return "complete"  # a str, and for every pillar


class UnnamedErrors(Water):
    @hookimpl
    def validate_form(self, pillar: str, stage: str, form: str, data: dict[str, Any],
                      plan: PlanState) -> Any:
        return [FieldError("year", "always wrong")] if pillar == "water" else None


class Unmarked(Water):
    def stage_gate(self, pillar: str, stage: str, plan: PlanState) -> Any:  # no @hookimpl
        return []


class BadExample(Water):
    form = FormSpec(pillar="water", stage="bimtek_1", form="water_baseline", model=WaterBaseline,
                    title_id="Data dasar air minum", title_en="Water baseline",
                    example=lambda plan, rng: {"year": 2022, "served_percent": 140})


LOAD_FAILURES = {
    RaisesInRegister: "register_forms raised RuntimeError: forms.yaml not found",
    WrongPillarType: "register_pillars gave dict, expected PillarSpec",
    WrongFormType: "register_forms gave IndicatorSpec, expected FormSpec",
    ForeignIndicator: "register_indicators: pillar 'living' is not registered by this plugin",
    FutureContract: "was written for plugin contract 2; this engine supports [1]",
    MisspelledHook: "does not fit the contract: unknown hook 'register_form'",
}


@pytest.mark.parametrize("cls", LOAD_FAILURES, ids=lambda c: c.__name__)
def test_a_plugin_that_cannot_load_is_refused_with_its_name(cls: type[Water]) -> None:
    plugin = cls()
    with pytest.raises(PluginError) as info:
        load_registry([*builtins(), ("broken_water", plugin)], entrypoints=False)
    assert info.value.plugin == "broken_water"
    assert str(info.value).startswith("pillar plugin 'broken_water': ")
    assert LOAD_FAILURES[cls] in str(info.value)
    assert pillar_plugin_problems(plugin, name="broken_water", alongside=builtins()) == [
        f"cannot be loaded: {info.value}"]


KIT_FINDINGS = {
    RaisesInValidate: ["validate_form raised KeyError: 'served' (for zz_not_this_plugin/",
                       "submitting the example failed: pillar plugin 'broken_water': "
                       "validate_form raised KeyError"],
    RaisesInGate: ["stage_gate raised ZeroDivisionError: division by zero (for water/bimtek_1/-)",
                   "stage_gate raised ZeroDivisionError"],
    BadAnswers: ["validate_form for water.water_baseline returned str; expected a list of "
                 "FieldError or None",
                 "stage_gate(water, bimtek_1) returned 'complete'; expected a list of non-empty "
                 "str or None",
                 "stage_gate answered 'complete' for pillar 'zz_not_this_plugin' that it does "
                 "not own"],
    UnnamedErrors: ["validate_form for water.water_baseline gave FieldError(pillar=None, "
                    "form=None, field='year'); each error names the pillar, the form and the "
                    "field"],
    Unmarked: ["stage_gate is defined but not marked @hookimpl, so it is never called"],
    BadExample: ["form water.water_baseline (bimtek_1), seed 0: submitting the example "
                 "failed: invalid input: water.water_baseline: served_percent: Input should be "
                 "less than or equal to 100"],
}


@pytest.mark.parametrize("cls", KIT_FINDINGS, ids=lambda c: c.__name__)
def test_the_kit_lists_every_problem_of_a_loadable_but_broken_plugin(cls: type[Water]) -> None:
    problems = pillar_plugin_problems(cls(), name="broken_water")
    for expected in KIT_FINDINGS[cls]:
        assert any(expected in p for p in problems), (expected, problems)
    with pytest.raises(PluginConformanceError) as info:
        check_pillar_plugin(cls(), name="broken_water")
    assert isinstance(info.value, AssertionError)
    assert info.value.plugin == "broken_water" and info.value.problems == problems
    assert str(info.value).startswith(f"pillar plugin 'broken_water' fails {len(problems)} ")


def test_two_plugins_claiming_one_pillar_are_refused_naming_both() -> None:
    with pytest.raises(PluginError) as info:
        load_registry([("water_a", Water()), ("water_b", Water())], entrypoints=False)
    assert info.value.plugin == "water_b"
    assert "pillar id 'water' is already provided by plugin 'water_a'" in str(info.value)
    assert "SMARTCITY_REPLACE_PILLARS=water" in str(info.value)


def test_a_plugin_claiming_a_builtin_pillar_is_refused() -> None:
    class Living(Water):
        spec = builtin("living").spec

    with pytest.raises(PluginError, match="'living' is already provided by plugin 'living'"):
        load_registry([*builtins(), ("my_living", Living())], entrypoints=False)


def test_hooks_that_raise_at_run_time_name_the_plugin_and_write_nothing(tmp_path: Path) -> None:
    registry = load_registry([*builtins(), ("broken_water", RaisesInValidate())],
                             entrypoints=False)
    engine = Engine(f"sqlite:///{tmp_path}/events.db", registry=registry)
    try:
        engine.create_programme(OPERATOR, "m100-2023", "Menuju 100 Smart City", 2023, ["35.02"])
        ops.enrol(engine, "m100-2023", "35.02")
        ops.open_stage(engine, "m100-2023", "35.02", "bimtek_1")
        before = engine.store.last_position()
        with pytest.raises(PluginError, match="'broken_water': validate_form raised KeyError"):
            ops.fill_stage(engine, "m100-2023", "35.02", "bimtek_1")
        assert engine.store.last_position() == before
        plan = engine.plan("m100-2023", "35.02")
    finally:
        engine.close()
    gate_registry = load_registry([*builtins(), ("broken_water", RaisesInGate())],
                                  entrypoints=False)
    with pytest.raises(PluginError, match="'broken_water': stage_gate raised ZeroDivisionError"):
        gate_registry.gate(plan, "bimtek_1")


# ---------------------------------------------------------------------- replacing a built-in
LIVING_V2 = StandardPillar(
    id="living", name_id="Kehidupan Cerdas", name_en="Smart Living",
    elements=builtin("living").elements,
    indicator_file=resources.files("plugins.living").joinpath("indicators.csv"),
    extra_forms=[FormSpec(pillar="living", stage="bimtek_1", form="water_baseline",
                          model=WaterBaseline, title_id="Data dasar air minum",
                          title_en="Water baseline", example=example_water)],
)


def test_a_builtin_pillar_is_replaced_through_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PluginError, match="SMARTCITY_REPLACE_PILLARS=living"):
        load_registry([*builtins(), ("living_v2", LIVING_V2)], entrypoints=False)
    monkeypatch.setenv("SMARTCITY_REPLACE_PILLARS", "living")
    registry = load_registry([*builtins(), ("living_v2", LIVING_V2)], entrypoints=False)
    assert registry.owner["living"] == "living_v2" and registry.replaced == {"living": {"living"}}
    forms = {f.form for f in registry.forms_for("living", "bimtek_1")}
    assert forms == {f.form for f in LIVING_V2.form_specs() if f.stage == "bimtek_1"}
    assert "water_baseline" in forms and "services_baseline" not in forms
    ref = next(r for r in registry.pillar_refs() if r.id == "living")
    assert ref.plugin == "living_v2"
    # the replaced plugin's rules no longer run: the same errors as the replacement alone
    only_strengths = {"items": [{"id": f"S{n}", "kind": "strength", "element": "health",
                                 "agency": "DINKES", "text": "Puskesmas terhubung"}
                                for n in range(4)]}
    errors = []
    for reg in (registry, load_registry([("living_v2", LIVING_V2)], entrypoints=False)):
        with pytest.raises(ValidationError) as info:
            reg.validate_form("living", "bimtek_1", "swot", only_strengths,
                              _enrolled(("living",)))
        errors.append(info.value.errors)
    assert errors[0] == errors[1] and any("no weakness" in e.message for e in errors[0])
    check_pillar_plugin(LIVING_V2, name="living_v2", alongside=builtins())


def _enrolled(pillars: tuple[str, ...]) -> PlanState:
    return PlanState(programme_id="m100-2023", region_code="35.02",
                     region_name="Kabupaten Ponorogo", region_kind="kabupaten",
                     head_title="Bupati", pillars=pillars, programme_year=2023,
                     stage="bimtek_1", status="open")


def test_hook_calls_are_traced_on_stderr_when_asked(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    load_registry([("water", Water())], entrypoints=False)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("SMARTCITY_TRACE_HOOKS", "1")
    registry = load_registry([("water", Water())], entrypoints=False)
    registry.gate(_enrolled(("water",)), "bimtek_1")
    out, err = capsys.readouterr()
    assert out == ""
    assert "register_pillars -> water [hook]" in err
    assert "stage_gate -> water [hook]" in err and "plan: plan:m100-2023:35.02" in err


# ---------------------------------------------------------------------- the example package
@pytest.fixture(scope="module")
def mobility_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/smartcity-mobility installed with pip into its own folder (offline: no index,
    no build isolation; a copy is built so the work tree gets no build/ or egg-info)."""
    src = tmp_path_factory.mktemp("src") / "smartcity-mobility"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", "build", ".pytest_cache"))
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-build-isolation", "--no-index", "--target", str(target),
                           str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


@pytest.fixture
def mobility(mobility_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installed example on sys.path, so importlib.metadata sees its entry point; any
    copy imported from the source folder is set aside so the installed one is loaded."""
    for mod in [m for m in sys.modules if m.split(".")[0] == "smartcity_mobility"]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.syspath_prepend(str(mobility_site))
    yield mobility_site


def test_example_plugin_loads_by_entry_point_and_conforms(mobility: Path) -> None:
    registry = load_registry(only=WITH_MOBILITY)
    assert list(registry.pillars) == list(WITH_MOBILITY)
    info = registry.plugins["mobility"]
    assert (info.package, info.version) == ("smartcity-mobility", "0.1.0")
    assert info.hooks == ("register_forms", "register_indicators", "register_pillars",
                          "stage_gate", "validate_form")
    module = registry.pm.get_plugin("mobility")
    assert module is not None and Path(module.__file__).is_relative_to(mobility)
    assert {i.framework for i in registry.indicators_of("mobility")} == {
        "ISO 37120:2014", "U4SSC KPIs for SSC"}
    check_pillar_plugin(module, name="mobility", alongside=builtins())


def test_example_plugin_is_not_loaded_unless_allowed(mobility: Path) -> None:
    assert "mobility" not in load_registry(only=BUILTIN_ORDER).pillars


MOBILITY_FORMS = {"bimtek_1": "transport_baseline", "bimtek_2": "quick_win_candidates",
                  "bimtek_3": "mobility_targets", "bimtek_4": "implementation_plan"}


def test_a_missing_mobility_form_blocks_each_stage_until_it_is_filled(
        mobility: Path, tmp_path: Path) -> None:
    engine = Engine(f"sqlite:///{tmp_path}/events.db", registry=load_registry(only=WITH_MOBILITY))
    programme, region = "m100-2023", "35.76"  # Kota Mojokerto
    try:
        engine.create_programme(OPERATOR, programme, "Menuju 100 Smart City 2023", 2023, [region])
        ops.enrol(engine, programme, region)
        for stage in BIMTEK_STAGES:
            form = MOBILITY_FORMS[stage]
            ops.open_stage(engine, programme, region, stage)
            ops.fill_stage(engine, programme, region, stage, seed=5,
                           skip=frozenset({("mobility", form)}))
            outcome = ops.close_stage(engine, programme, region, stage)
            assert not outcome.completed and list(outcome.missing) == ["mobility"]
            assert outcome.missing["mobility"][0] == f"form {form}"
            if stage != "bimtek_1":  # the plugin's own gate speaks too
                assert len(outcome.missing["mobility"]) > 1, outcome.missing
            with pytest.raises(TransitionError, match=f"mobility: form {form}"):
                engine.execute(OPERATOR, programme, region, "CompleteStage", {"stage": stage})
            ops.fill_stage(engine, programme, region, stage, seed=5)  # the late form comes in
            assert ops.close_stage(engine, programme, region, stage).completed
        ops.review(engine, programme, region, return_first=True)
        ops.approve(engine, programme, region, 2023)
        state = engine.plan(programme, region)
    finally:
        engine.close()
    assert state.stage == "approved" and state.pillars == WITH_MOBILITY
    assert [f.form for f in state.forms_of("mobility")] == list(MOBILITY_FORMS.values())
    steps = state.form("bimtek_4", "mobility", "implementation_plan")
    assert steps is not None and steps.submissions == 2  # resubmitted in the revision
    assert [q.quick_win_id for q in state.quick_wins.values() if q.pillar == "mobility"]


def test_a_plan_made_with_mobility_replays_after_mobility_is_removed(
        mobility: Path, tmp_path: Path, registry: PillarRegistry) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    with_mobility = Engine(url, registry=load_registry(only=WITH_MOBILITY))
    try:
        advance_to(with_mobility, OPERATOR, "m100-2023", "13.73", "bimtek_4")
        assert ops.close_stage(with_mobility, "m100-2023", "13.73", "bimtek_4").completed
        ops.review(with_mobility, "m100-2023", "13.73", return_first=False)
        ops.approve(with_mobility, "m100-2023", "13.73", 2023)
        before = with_mobility.plan("m100-2023", "13.73").to_dict()
    finally:
        with_mobility.close()
    assert "mobility" not in registry.pillars  # the six built-ins only, as after uninstalling
    engine = Engine(url, registry=registry)
    try:
        programme = engine.programme("m100-2023")
        assert programme.pillar_ids == WITH_MOBILITY
        assert PillarRef(id="mobility", plugin="mobility", version="0.1.0",
                         contract=1) in programme.pillars
        assert engine.plan("m100-2023", "13.73").to_dict() == before
        assert engine.replay(plan_stream("m100-2023", "13.73")).to_dict() == before
        assert audit.verify_store(engine.store).ok
        report = cohort_report(engine, "m100-2023")
        assert report["programme"]["pillars"][-1]["id"] == "mobility"
        gate = engine.registry.gate(engine.plan("m100-2023", "13.73"), "bimtek_4")
        assert gate["mobility"] == ["pillar plugin 'mobility' is not loaded"]
        # a programme created now records the pillars loaded now
        engine.create_programme(OPERATOR, "m100-2024", "Menuju 100 Smart City 2024", 2024)
        assert engine.programme("m100-2024").pillar_ids == BUILTIN_ORDER
    finally:
        engine.close()


def test_smartcity_plugins_lists_the_example_with_package_version_hooks_and_forms(
        mobility: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCITY_LOAD_PILLARS", ",".join(WITH_MOBILITY))
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["pillar"]: r for r in json.loads(result.output)}
    assert list(rows) == list(WITH_MOBILITY)
    assert rows["mobility"] == {
        "pillar": "mobility", "plugin": "mobility", "package": "smartcity-mobility",
        "version": "0.1.0", "indicators": 12,
        "hooks": ["register_forms", "register_indicators", "register_pillars", "stage_gate",
                  "validate_form"],
        "forms": {stage: [form] for stage, form in MOBILITY_FORMS.items()}}
    assert rows["living"]["package"] == "smartcity-engine"
    assert "services_baseline" in rows["living"]["forms"]["bimtek_1"]
    monkeypatch.setenv("COLUMNS", "240")  # one table row per line
    table = runner.invoke(app, ["plugins"])
    assert table.exit_code == 0 and "smartcity-mobility" in table.output
    assert "bimtek_3: mobility_targets" in table.output
