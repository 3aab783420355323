"""The conformance kit for pillar plugins: call it from a plugin's own tests.

    from engine.testing import check_pillar_plugin
    import smartcity_mobility

    def test_conforms() -> None:
        check_pillar_plugin(smartcity_mobility, name="mobility")

The plugin is loaded on its own (optionally ``alongside`` others) through the same registry
code the engine uses, then every form is filled with its example content stage by stage,
exactly as the demo does, and each hook's answers are checked against the contract in
``engine/hookspecs.py``. ``pillar_plugin_problems`` returns the problems as a list;
``check_pillar_plugin`` raises one AssertionError listing them all, naming the plugin.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from engine import hookspecs
from engine.domain import plan as P
from engine.errors import FieldError, SmartCityError
from engine.pillars import FormSpec, IndicatorSpec, PillarRegistry, PillarSpec, load_registry
from engine.regions import get_region

FOREIGN_PILLAR = "zz_not_this_plugin"  # a pillar id no plugin owns
KIT_REGION = "35.02"  # Kabupaten Ponorogo
KIT_YEAR = 2023


def hook_names() -> list[str]:
    """Every hook of the contract: the functions of engine.hookspecs marked ``@hookspec``."""
    marker = f"{hookspecs.PROJECT}_spec"
    return [n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, marker)]


class PluginConformanceError(AssertionError):
    """A pillar plugin does not meet the contract; ``problems`` lists every finding."""

    def __init__(self, plugin: str, problems: list[str]):
        self.plugin = plugin
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"pillar plugin {plugin!r} fails {len(problems)} conformance "
                         f"check(s):\n{lines}")


@dataclass
class _Run:
    """One conformance run: the plugin's registry and the problems found so far."""

    name: str
    registry: PillarRegistry
    pillars: list[str]
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(text)


def plugin_name(plugin: Any) -> str:
    """A module's name, a built-in ``StandardPillar``'s id, else the object's type name."""
    return str(getattr(plugin, "__name__", None) or getattr(plugin, "id", None)
               or type(plugin).__name__)


def pillar_plugin_problems(plugin: Any, *, name: str | None = None,
                           alongside: Iterable[tuple[str, Any]] = (),
                           seeds: Iterable[int] = (0, 1, 2)) -> list[str]:
    """Every way ``plugin`` breaks the pillar-plugin contract (empty list: it conforms).

    ``alongside`` are (name, plugin) pairs loaded before it, for a plugin that needs others;
    only what ``plugin`` contributes is checked. ``seeds`` drive its example content.
    """
    name = name or plugin_name(plugin)
    try:
        registry = load_registry([*alongside, (name, plugin)], entrypoints=False)
    except SmartCityError as exc:
        return [f"cannot be loaded: {exc}"]
    pillars = [p for p, owner in registry.owner.items() if owner == name]
    run = _Run(name, registry, pillars)
    _check_hooks(run, plugin)
    if not pillars:
        run.problem("register_pillars registered no pillar (a pillar plugin gives at least one)")
        return run.problems
    empty = _enrolled(tuple(registry.pillars))
    for pillar in pillars:
        _check_identity(run, registry.pillars[pillar])
        _check_indicators(run, pillar)
        for spec in (f for f in registry.forms.values() if f.pillar == pillar):
            _check_form_spec(run, spec)
        for stage in P.BIMTEK_STAGES:
            _check_gate_answer(run, pillar, stage, empty)
    _check_foreign_pillar(run)
    for seed in seeds:
        found = len(run.problems)
        _walk_stages(run, seed)
        if len(run.problems) > found:
            break  # other seeds would mostly repeat the same findings
    return list(dict.fromkeys(run.problems))  # each finding once


def check_pillar_plugin(plugin: Any, *, name: str | None = None,
                        alongside: Iterable[tuple[str, Any]] = (),
                        seeds: Iterable[int] = (0, 1, 2)) -> None:
    """Raise ``PluginConformanceError`` (an AssertionError) listing every problem found."""
    __tracebackhide__ = True  # pytest shows the message, not this frame
    name = name or plugin_name(plugin)
    problems = pillar_plugin_problems(plugin, name=name, alongside=alongside, seeds=seeds)
    if problems:
        raise PluginConformanceError(name, problems)


# ---------------------------------------------------------------------- registration
def _check_hooks(run: _Run, plugin: Any) -> None:
    info = run.registry.plugins[run.name]
    for hook in hook_names():
        if callable(getattr(plugin, hook, None)) and hook not in info.hooks:
            run.problem(f"{hook} is defined but not marked @hookimpl, so it is never called")
    if not {"register_pillars", "register_forms"} <= set(info.hooks):
        run.problem("a pillar plugin implements register_pillars and register_forms; "
                    f"implemented: {', '.join(info.hooks) or 'none'}")


def _blank(*values: str) -> bool:
    return any(not v.strip() for v in values)


def _check_identity(run: _Run, spec: PillarSpec) -> None:
    where = f"pillar {spec.id}"  # the loader already refused unsupported contracts
    try:
        PillarSpec.model_validate(spec.model_dump())  # catches model_construct shortcuts
    except PydanticValidationError as exc:
        run.problem(f"{where}: identity does not validate: {exc}")
    if _blank(spec.name_id, spec.name_en):
        run.problem(f"{where}: needs an Indonesian (name_id) and an English (name_en) name")
    for el in spec.elements:
        if _blank(el.name_id, el.name_en):
            run.problem(f"{where}: element {el.id} needs name_id and name_en")


def _check_indicators(run: _Run, pillar: str) -> None:
    mine = run.registry.indicators_of(pillar)
    if not mine:
        run.problem(f"pillar {pillar}: registers no indicator (evaluation needs at least one)")
    elements = {e.id for e in run.registry.pillars[pillar].elements}
    for ind in mine:
        _check_indicator(run, ind, elements)


def _check_indicator(run: _Run, ind: IndicatorSpec, elements: set[str]) -> None:
    where = f"indicator {ind.id}"
    if _blank(ind.name_id, ind.name_en, ind.unit):
        run.problem(f"{where}: needs name_id, name_en and a unit")
    if ind.element not in elements:
        run.problem(f"{where}: element {ind.element!r} is not an element of {ind.pillar}")
    if bool(ind.framework.strip()) != bool(ind.framework_id.strip()):
        run.problem(f"{where}: a standard reference gives both framework and framework_id "
                    f"(got {ind.framework!r}, {ind.framework_id!r})")


def _check_form_spec(run: _Run, spec: FormSpec) -> None:
    where = f"form {spec.pillar}.{spec.form} ({spec.stage})"
    if _blank(spec.title_id, spec.title_en):
        run.problem(f"{where}: needs title_id and title_en")
    try:
        schema = spec.json_schema()
        json.dumps(schema)
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        run.problem(f"{where}: model gives no JSON Schema: {type(exc).__name__}: {exc}")
        return
    if schema.get("type") != "object":
        run.problem(f"{where}: JSON Schema is not an object schema")


# ---------------------------------------------------------------------- hook answers
def _hook_results(run: _Run, hook: str, **kwargs: Any) -> list[Any] | None:
    """Call the plugin's own implementation of ``hook``; None (and a problem) if it raised."""
    for impl in getattr(run.registry.pm.hook, hook).get_hookimpls():
        if impl.plugin_name != run.name:
            continue
        try:
            return [impl.function(**{a: kwargs[a] for a in impl.argnames})]
        except Exception as exc:  # noqa: BLE001 - a raising plugin is the finding
            run.problem(f"{hook} raised {type(exc).__name__}: {exc} (for {kwargs.get('pillar')}"
                        f"/{kwargs.get('stage')}/{kwargs.get('form', '-')})")
            return None
    return []


def _check_foreign_pillar(run: _Run) -> None:
    """Hooks are called for every pillar: a plugin must leave others' pillars alone."""
    plan = _enrolled((*run.registry.pillars, FOREIGN_PILLAR))
    for stage in P.BIMTEK_STAGES:
        for result in _hook_results(run, "validate_form", pillar=FOREIGN_PILLAR, stage=stage,
                                    form="some_form", data={}, plan=plan) or []:
            if result:
                run.problem(f"validate_form answered {result!r} for pillar {FOREIGN_PILLAR!r} "
                            "that it does not own (return None)")
        for result in _hook_results(run, "stage_gate", pillar=FOREIGN_PILLAR, stage=stage,
                                    plan=plan) or []:
            if result:
                run.problem(f"stage_gate answered {result!r} for pillar {FOREIGN_PILLAR!r} "
                            "that it does not own (return None)")


def _check_field_errors(run: _Run, errors: list[FieldError], pillar: str, form: str) -> None:
    for err in errors:
        if (err.pillar, err.form) != (pillar, form) or not err.field:
            run.problem(f"validate_form for {pillar}.{form} gave FieldError(pillar="
                        f"{err.pillar!r}, form={err.form!r}, field={err.field!r}); each error "
                        "names the pillar, the form and the field")


def _check_gate_answer(run: _Run, pillar: str, stage: str, plan: P.PlanState) -> None:
    for result in _hook_results(run, "stage_gate", pillar=pillar, stage=stage, plan=plan) or []:
        if result is not None and not (isinstance(result, list)
                                       and all(isinstance(m, str) and m for m in result)):
            run.problem(f"stage_gate({pillar}, {stage}) returned {result!r}; expected a list "
                        "of non-empty str or None")


# ---------------------------------------------------------------------- a plan, stage by stage
def _enrolled(pillars: tuple[str, ...]) -> P.PlanState:
    region = get_region(KIT_REGION)
    return P.evolve(None, P.PlanEnrolled(
        programme_id="conformance", region_code=region.code, region_name=region.display_name,
        region_kind=region.kind, head_title=region.head_title, pillars=pillars,
        programme_year=KIT_YEAR))


def _walk_stages(run: _Run, seed: int) -> None:
    """Fill the plugin's forms with their examples, stage by stage, as the demo does; every
    answer must have the documented shape, and a plan so filled must pass every gate."""
    plan = _enrolled(tuple(run.registry.pillars))
    empty = plan
    for stage in P.BIMTEK_STAGES:
        plan = P.evolve(plan, P.StageStarted.model_validate({"stage": stage}))
        rng = random.Random(f"{seed}:{stage}")
        complete = True
        for pillar in run.pillars:
            for spec in run.registry.forms_for(pillar, stage):
                if spec.example is None:
                    complete = complete and not spec.required
                    continue
                filled = _fill(run, spec, plan, empty, rng, seed)
                complete = complete and filled is not None
                plan = filled or plan
        if not complete:
            return  # later stages build on this one's content
        try:
            gate = run.registry.gate(plan, stage)
        except SmartCityError as exc:
            run.problem(f"seed {seed}: {exc}")
            return
        left = {p: m for p, m in gate.items() if m and p in run.pillars}
        if left:
            run.problem(f"seed {seed}: a plan filled with the examples does not pass the "
                        f"{stage} gate (the demo would stall): {left}")
            return
        plan = P.evolve(plan, P.StageCompleted.model_validate({"stage": stage}))


def _fill(run: _Run, spec: FormSpec, plan: P.PlanState, empty: P.PlanState,
          rng: random.Random, seed: int) -> P.PlanState | None:
    """Submit the form's example; None (and a problem) when it is refused."""
    where = f"form {spec.pillar}.{spec.form} ({spec.stage}), seed {seed}"
    if spec.example is None:
        return plan
    try:
        data = spec.example(plan, rng)
    except Exception as exc:  # noqa: BLE001
        run.problem(f"{where}: example raised {type(exc).__name__}: {exc}")
        return None
    _check_rules_on(run, spec, data, empty)
    try:
        clean = run.registry.validate_form(spec.pillar, spec.stage, spec.form, data, plan)
    except SmartCityError as exc:  # refused by the model or a rule, or a PluginError
        run.problem(f"{where}: submitting the example failed: {exc}")
        return None
    plan = P.evolve(plan, P.FormSubmitted.model_validate(
        {"pillar": spec.pillar, "stage": spec.stage, "form": spec.form, "data": clean}))
    try:
        proposed = _proposed(spec.pillar, spec.form, clean)
    except (KeyError, TypeError, PydanticValidationError) as exc:
        run.problem(f"{where}: the demo proposes each candidate of a quick_win_candidates "
                    "form, which needs candidates with quick_win_id, name, agency and "
                    f"rationale: {type(exc).__name__}: {exc}")
        return None
    for qw in proposed:
        if qw.quick_win_id not in plan.quick_wins:
            plan = P.evolve(plan, qw)
    return plan


def _check_rules_on(run: _Run, spec: FormSpec, data: Any, empty: P.PlanState) -> None:
    """Valid content on a plan with nothing in it yet: rules may object, never raise, and
    each objection names the pillar, the form and the field."""
    try:
        clean = spec.model.model_validate(data).model_dump(mode="json")
    except Exception:  # noqa: BLE001 - refused by its model: reported by _fill
        return
    for result in _hook_results(run, "validate_form", pillar=spec.pillar, stage=spec.stage,
                                form=spec.form, data=clean, plan=empty) or []:
        if result is None:
            continue
        if not isinstance(result, list) or not all(isinstance(e, FieldError) for e in result):
            run.problem(f"validate_form for {spec.pillar}.{spec.form} returned "
                        f"{type(result).__name__}; expected a list of FieldError or None")
            continue
        _check_field_errors(run, result, spec.pillar, spec.form)


def _proposed(pillar: str, form: str, data: dict[str, Any]) -> list[P.QuickWinProposed]:
    """Quick wins the officer proposes from a quick_win_candidates form (as the demo does,
    see engine.operations.fill_stage)."""
    if form != "quick_win_candidates":
        return []
    return [P.QuickWinProposed(quick_win_id=c["quick_win_id"], pillar=pillar, name=c["name"],
                               agency=c["agency"], description=c["rationale"])
            for c in data["candidates"]]


__all__ = ["PluginConformanceError", "check_pillar_plugin", "hook_names",
           "pillar_plugin_problems", "plugin_name"]
