"""Loading pillar plugins and the checked registry of what they contribute."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import entry_points
from typing import Any, Literal

import pluggy
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from engine import hookspecs
from engine.chain import canonical_json
from engine.domain.plan import BIMTEK_STAGES, PlanState
from engine.domain.programme import PillarRef
from engine.errors import FieldError, PluginError, SmartCityError, ValidationError

ENTRY_POINT_GROUP = "smartcity.pillars"
LOAD_VARIABLE = "SMARTCITY_LOAD_PILLARS"  # comma-separated allow-list of entry-point names
TRACE_VARIABLE = "SMARTCITY_TRACE_HOOKS"

_ID = r"^[a-z][a-z0-9_]{1,39}$"


class ElementSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(pattern=_ID)
    name_id: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class PillarSpec(BaseModel):
    """A pillar's identity: id, names in Indonesian and English, elements."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(pattern=_ID)
    name_id: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    elements: tuple[ElementSpec, ...] = Field(min_length=1)
    contract: int = hookspecs.CONTRACT_VERSION
    description: str = ""

    @field_validator("elements")
    @classmethod
    def _unique_elements(cls, v: tuple[ElementSpec, ...]) -> tuple[ElementSpec, ...]:
        ids = [e.id for e in v]
        if len(set(ids)) != len(ids):
            raise ValueError("element ids repeat")
        return v


class IndicatorSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(pattern=r"^[A-Z0-9][A-Z0-9_.-]{1,39}$")
    pillar: str
    element: str
    name_id: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    direction: Literal["higher", "lower"]
    framework: str = ""
    framework_id: str = ""


@dataclass(frozen=True)
class FormSpec:
    """A form a pillar asks for at one stage; ``model`` is a pydantic model class."""

    pillar: str
    stage: str
    form: str
    model: type[BaseModel]
    title_id: str
    title_en: str
    required: bool = True
    schema_version: int = 1
    # example(plan, rng) -> plausible data for this form: the demo fills forms with it and
    # the conformance kit checks that it passes the form's model and rules.
    example: Callable[[PlanState, random.Random], dict[str, Any]] | None = None

    def json_schema(self) -> dict[str, Any]:
        schema = self.model.model_json_schema()
        schema.setdefault("title", self.title_en)
        schema["x-smartcity"] = {"pillar": self.pillar, "stage": self.stage, "form": self.form,
                                 "title_id": self.title_id, "title_en": self.title_en,
                                 "required": self.required,
                                 "schema_version": self.schema_version}
        return schema


@dataclass(frozen=True)
class Reminder:
    """A deadline reminder handed to ``notify`` hooks."""

    reminder_id: str
    programme_id: str
    region_code: str
    stage: str
    deadline: date
    kind: Literal["upcoming", "overdue"]
    message: str


@dataclass(frozen=True)
class PluginInfo:
    name: str
    package: str
    version: str
    hooks: tuple[str, ...]


@dataclass
class PillarRegistry:
    """Everything the loaded plugins contributed, each item tagged with its plugin."""

    pm: pluggy.PluginManager
    pillars: dict[str, PillarSpec] = field(default_factory=dict)
    indicators: dict[str, IndicatorSpec] = field(default_factory=dict)
    forms: dict[tuple[str, str, str], FormSpec] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)  # pillar id -> plugin name
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    replaced: dict[str, set[str]] = field(default_factory=dict)  # pillar -> plugins overridden

    # ---------------------------------------------------------------- queries
    def pillar_refs(self) -> tuple[PillarRef, ...]:
        return tuple(
            PillarRef(id=p, plugin=self.owner[p], version=self.plugins[self.owner[p]].version,
                      contract=self.pillars[p].contract)
            for p in self.pillars
        )

    def forms_for(self, pillar: str, stage: str) -> list[FormSpec]:
        return [f for (p, s, _), f in self.forms.items() if p == pillar and s == stage]

    def form_spec(self, pillar: str, stage: str, form: str) -> FormSpec:
        if pillar not in self.pillars:
            raise ValidationError(FieldError("pillar", f"no pillar {pillar!r} is loaded",
                                             fix="one of " + ", ".join(self.pillars)))
        spec = self.forms.get((pillar, stage, form))
        if spec is None:
            known = ", ".join(f.form for f in self.forms_for(pillar, stage)) or "none"
            raise ValidationError(FieldError("form", f"pillar {pillar!r} has no form {form!r} "
                                             f"at {stage}", pillar=pillar, form=form,
                                             fix=f"forms at {stage}: {known}"))
        return spec

    def indicators_of(self, pillar: str) -> list[IndicatorSpec]:
        return [i for i in self.indicators.values() if i.pillar == pillar]

    # ---------------------------------------------------------------- validation
    def validate_form(self, pillar: str, stage: str, form: str, data: Any,
                      plan: PlanState) -> dict[str, Any]:
        """The form's model, then every plugin's rules. Returns the normalised data."""
        spec = self.form_spec(pillar, stage, form)
        if not isinstance(data, dict):
            raise ValidationError(FieldError("data", "a form is a JSON object", pillar=pillar,
                                             form=form))
        try:
            model = spec.model.model_validate(data)
        except PydanticValidationError as exc:
            raise ValidationError.from_pydantic(exc, pillar=pillar, form=form) from None
        clean = model.model_dump(mode="json")
        canonical_json(clean)  # refuses floats with the field named
        errors: list[FieldError] = []
        for plugin_name, result in self._call("validate_form", pillar=pillar, stage=stage,
                                              form=form, data=clean, plan=plan):
            if result is None:
                continue
            if not isinstance(result, list) or not all(isinstance(e, FieldError) for e in result):
                raise PluginError(plugin_name, "validate_form must return a list of FieldError, "
                                  f"got {type(result).__name__}")
            errors.extend(result)
        if errors:
            raise ValidationError(errors, summary=f"{pillar}.{form} was rejected")
        return clean

    def gate(self, plan: PlanState, stage: str) -> dict[str, list[str]]:
        """For each of the plan's pillars, what is still missing to complete ``stage``."""
        out: dict[str, list[str]] = {}
        for pillar in plan.pillars:
            missing: list[str] = []
            if pillar not in self.pillars:
                missing.append(f"pillar plugin {pillar!r} is not loaded")
                out[pillar] = missing
                continue
            for spec in self.forms_for(pillar, stage):
                if spec.required and plan.form(stage, pillar, spec.form) is None:
                    missing.append(f"form {spec.form}")
            for plugin_name, result in self._call("stage_gate", pillar=pillar, stage=stage,
                                                  plan=plan):
                if result is None:
                    continue
                if not isinstance(result, list) or not all(isinstance(m, str) for m in result):
                    raise PluginError(plugin_name, "stage_gate must return a list of str, got "
                                      f"{type(result).__name__}")
                missing.extend(result)
            out[pillar] = missing
        return out

    def notify(self, reminder: Reminder) -> list[tuple[str, bool]]:
        """Hand a reminder to every ``notify`` implementation: (plugin, delivered)."""
        return [(name, bool(result)) for name, result in self._call("notify",
                                                                     reminder=reminder)]

    def _call(self, hook: str, **kwargs: Any) -> Iterable[tuple[str, Any]]:
        """Call each implementation separately so a failure names its plugin."""
        skip = self.replaced.get(kwargs.get("pillar", ""), set())
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            if impl.plugin_name in skip:
                continue
            _trace(self.pm, hook, impl.plugin_name, kwargs)
            try:
                result = impl.function(**{a: kwargs[a] for a in impl.argnames})
            except SmartCityError:
                raise
            except Exception as exc:  # a plugin bug: report it with the plugin's name
                raise PluginError(impl.plugin_name,
                                  f"{hook} raised {type(exc).__name__}: {exc}") from exc
            yield impl.plugin_name, result


BUILTIN_ORDER = ("governance", "branding", "economy", "living", "society", "environment")


def _load_order(ep: Any) -> tuple[int, str]:
    """The six built-in pillars in the programme's order, then others by name."""
    name = ep.name
    return (BUILTIN_ORDER.index(name) if name in BUILTIN_ORDER else len(BUILTIN_ORDER), name)


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_VARIABLE):
        pm.trace.root.setwriter(sys.stderr.write)  # stderr: keeps `--json` output clean
        pm.enable_tracing()
    return pm


def _trace(pm: pluggy.PluginManager, hook: str, plugin: str, kwargs: dict[str, Any]) -> None:
    """One trace line per implementation called. The engine calls each implementation itself
    (so a failure names its plugin), which pluggy's own tracing does not see."""
    shown = {k: v.plan_id if isinstance(v, PlanState) else v for k, v in kwargs.items()
             if k not in ("data", "register")}
    pm.trace.root.get("hook")(f"{hook} -> {plugin}", shown)


def load_registry(extra: Iterable[tuple[str, Any]] = (), *, entrypoints: bool = True,
                  only: Iterable[str] | None = None) -> PillarRegistry:
    """Load plugins: entry points (narrowed by $SMARTCITY_LOAD_PILLARS or ``only``),
    then ``extra`` (name, plugin) pairs, and collect what they register."""
    pm = make_plugin_manager()
    packages: dict[str, tuple[str, str]] = {}
    allow = set(only) if only is not None else None
    if allow is None and os.environ.get(LOAD_VARIABLE):
        allow = {n.strip() for n in os.environ[LOAD_VARIABLE].split(",") if n.strip()}
    if entrypoints:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=_load_order):
            if allow is not None and ep.name not in allow:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(ep.name, f"cannot be imported ({ep.value}): "
                                  f"{type(exc).__name__}: {exc}") from exc
            dist = ep.dist
            packages[ep.name] = (dist.name if dist else ep.value,
                                 dist.version if dist else "unknown")
            _register(pm, plugin, ep.name)
    for name, plugin in extra:
        packages[name] = (getattr(plugin, "__name__", name),
                          str(getattr(plugin, "__version__", "unknown")))
        _register(pm, plugin, name)
    return collect(pm, packages)


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(name, f"does not fit the contract: {exc}") from exc


def collect(pm: pluggy.PluginManager, packages: dict[str, tuple[str, str]]) -> PillarRegistry:
    reg = PillarRegistry(pm=pm)
    for plugin_name, plugin in pm.list_name_plugin():
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        package, version = packages.get(plugin_name, (plugin_name, "unknown"))
        reg.plugins[plugin_name] = PluginInfo(plugin_name, package, version, hooks)
    _collect_pillars(reg)
    _collect(reg, "register_indicators", IndicatorSpec, _add_indicator)
    _collect(reg, "register_forms", FormSpec, _add_form)
    return reg


def _impls(reg: PillarRegistry, hook: str) -> list[Any]:
    return list(getattr(reg.pm.hook, hook).get_hookimpls())


def _run(reg: PillarRegistry, impl: Any, hook: str, register: Any) -> None:
    _trace(reg.pm, hook, impl.plugin_name, {})
    try:
        impl.function(register)
    except SmartCityError:
        raise
    except Exception as exc:
        raise PluginError(impl.plugin_name, f"{hook} raised {type(exc).__name__}: {exc}") from exc


def _collect_pillars(reg: PillarRegistry) -> None:
    replace = {p.strip() for p in os.environ.get("SMARTCITY_REPLACE_PILLARS", "").split(",") if p}
    for impl in _impls(reg, "register_pillars"):
        name = impl.plugin_name

        def register(spec: Any, _name: str = name) -> None:
            if not isinstance(spec, PillarSpec):
                raise PluginError(_name, f"register_pillars gave {type(spec).__name__}, "
                                  "expected PillarSpec")
            if spec.contract not in hookspecs.SUPPORTED_CONTRACTS:
                raise PluginError(_name, f"was written for plugin contract {spec.contract}; "
                                  f"this engine supports {sorted(hookspecs.SUPPORTED_CONTRACTS)}"
                                  " - upgrade the engine or the plugin")
            if spec.id in reg.pillars and spec.id not in replace:
                raise PluginError(_name, f"pillar id {spec.id!r} is already provided by plugin "
                                  f"{reg.owner[spec.id]!r} (set SMARTCITY_REPLACE_PILLARS="
                                  f"{spec.id} to let the later one replace it)")
            if spec.id in reg.pillars:
                reg.replaced.setdefault(spec.id, set()).add(reg.owner[spec.id])
            reg.pillars[spec.id] = spec
            reg.owner[spec.id] = _name

        _run(reg, impl, "register_pillars", register)


def _collect(reg: PillarRegistry, hook: str, kind: type, add: Any) -> None:
    for impl in _impls(reg, hook):
        name = impl.plugin_name

        def register(item: Any, _name: str = name) -> None:
            if not isinstance(item, kind):
                raise PluginError(_name, f"{hook} gave {type(item).__name__}, "
                                  f"expected {kind.__name__}")
            if reg.owner.get(item.pillar) != _name:
                if _name in reg.replaced.get(item.pillar, ()):
                    return  # this plugin's pillar was replaced by a later plugin
                raise PluginError(_name, f"{hook}: pillar {item.pillar!r} is not registered by "
                                  "this plugin")
            add(reg, item, _name)

        _run(reg, impl, hook, register)


def _add_indicator(reg: PillarRegistry, item: IndicatorSpec, name: str) -> None:
    if item.id in reg.indicators:
        raise PluginError(name, f"indicator id {item.id!r} is registered twice")
    if item.element not in {e.id for e in reg.pillars[item.pillar].elements}:
        raise PluginError(name, f"indicator {item.id}: element {item.element!r} is not an "
                          f"element of pillar {item.pillar!r}")
    reg.indicators[item.id] = item


def _add_form(reg: PillarRegistry, item: FormSpec, name: str) -> None:
    key = (item.pillar, item.stage, item.form)
    if item.stage not in BIMTEK_STAGES:
        raise PluginError(name, f"form {item.form!r}: stage {item.stage!r} is not one of "
                          f"{', '.join(BIMTEK_STAGES)}")
    if not (isinstance(item.model, type) and issubclass(item.model, BaseModel)):
        raise PluginError(name, f"form {item.form!r}: model must be a pydantic model class")
    if key in reg.forms:
        raise PluginError(name, f"form {item.form!r} of {item.pillar} at {item.stage} is "
                          "registered twice")
    reg.forms[key] = item
