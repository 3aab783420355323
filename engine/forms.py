"""The pillar kit: the standard forms every pillar asks for, their expert rules and gates.

A pillar plugin builds a ``StandardPillar`` from its identity and indicator file and
delegates to it from plain hook functions; it can add forms and rules of its own.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache, partial
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from engine.domain.plan import HIGH_RISK, PlanState
from engine.errors import FieldError
from engine.examples import STANDARD_EXAMPLES
from engine.hookspecs import hookimpl
from engine.pillars import ElementSpec, FormSpec, IndicatorSpec, PillarSpec

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Ident = Annotated[str, StringConstraints(strip_whitespace=True,
                                         pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")]
AgencyCode = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True,
                                              pattern=r"^[A-Za-z][A-Za-z0-9_]{1,39}$")]
HORIZON_YEARS = 10  # a masterplan's long-term road map


@cache
def agencies() -> dict[str, str]:
    """Known regional agencies (OPD) and partner institutions: code -> Indonesian name."""
    text = resources.files("engine.data").joinpath("agencies.csv").read_text(encoding="utf-8")
    return {r["code"]: r["name"] for r in csv.DictReader(text.splitlines())}


MAX_EXACT_INT = 2**53 - 1  # JSON readers (RFC 7493, RFC 8785) hold integers exactly up to here


class Form(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _exact_integer(cls, value: Any) -> Any:
        """Refuse integers the audit log's canonical JSON cannot hold exactly (orjson raised
        a TypeError past 64 bits); applies to every field of every form, plugins' included."""
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_EXACT_INT:
            raise ValueError(f"{value} is too large to record exactly (at most {MAX_EXACT_INT})")
        return value


def build_models(pillar: str, elements: tuple[str, ...]) -> dict[tuple[str, str], type[Form]]:
    """The standard form models of one pillar, with its elements as the allowed values."""
    Element = Literal[elements]  # type: ignore[valid-type]
    p = pillar.capitalize()

    class ReadinessArea(Form):
        level: int = Field(ge=1, le=5, description="1 ad hoc, 2 initial, 3 scattered, "
                                                   "4 integrated, 5 smart")
        findings: Text
        evidence: list[Text] = Field(default_factory=list,
                                     description="documents, regulations, links")

    class Readiness(Form):
        """Bimtek I: readiness in structure, infrastructure and superstructure."""
        model_config = ConfigDict(title=f"{p} readiness")
        structure: ReadinessArea
        infrastructure: ReadinessArea
        superstructure: ReadinessArea
        problems: list[Text] = Field(min_length=1)
        potentials: list[Text] = Field(min_length=1)

    class SwotItem(Form):
        id: Ident
        kind: Literal["strength", "weakness", "opportunity", "threat"]
        element: Element
        agency: AgencyCode
        text: Text

    class Swot(Form):
        """Bimtek I: each agency's strengths, weaknesses, opportunities and threats."""
        model_config = ConfigDict(title=f"{p} SWOT")
        items: list[SwotItem] = Field(min_length=4)

    class InnovationProgramme(Form):
        id: Ident
        element: Element
        name: Text
        agency: AgencyCode
        description: Text
        swot_refs: list[Ident] = Field(min_length=1)
        horizon: Literal["short", "medium", "long"]

    class InnovationProgrammes(Form):
        """Bimtek II: innovation programmes proposed for the pillar."""
        model_config = ConfigDict(title=f"{p} innovation programmes")
        programmes: list[InnovationProgramme] = Field(min_length=1)

    class Candidate(Form):
        quick_win_id: Ident
        name: Text
        agency: AgencyCode
        element: Element
        programme_ref: Ident
        doable_within_12_months: bool
        rationale: Text

    class QuickWinCandidates(Form):
        """Bimtek II: quick-win candidates (program unggulan)."""
        model_config = ConfigDict(title=f"{p} quick-win candidates")
        candidates: list[Candidate] = Field(min_length=1, max_length=5)

    class RiskItem(Form):
        risk: Text
        likelihood: int = Field(ge=1, le=5)
        impact: int = Field(ge=1, le=5)
        handling: Text
        mitigation: str = ""

    class Profile(Form):
        quick_win_id: Ident
        objective: Text
        beneficiaries: Text
        budget_idr: int = Field(ge=0, description="rupiah")
        output_indicator: str | None = None
        risks: list[RiskItem] = Field(min_length=1)

    class QuickWinProfiles(Form):
        """Bimtek III: a profile and risk register for each quick win."""
        model_config = ConfigDict(title=f"{p} quick-win profiles")
        profiles: list[Profile] = Field(min_length=1)

    class RoadmapItem(Form):
        horizon: Literal[1, 5, 10]
        year: int
        element: Element
        programme_ref: Ident
        target: Text

    class Roadmap(Form):
        """Bimtek III: the 1-, 5- and 10-year road map."""
        model_config = ConfigDict(title=f"{p} roadmap")
        items: list[RoadmapItem] = Field(min_length=3)

    class Step(Form):
        step_id: Ident
        ref: Ident = Field(description="an innovation programme or quick-win id")
        owner_agency: AgencyCode
        start: date
        end: date
        budget_idr: int = Field(ge=0)
        milestone: Text

    class ImplementationSteps(Form):
        """Bimtek IV: implementation steps for the chosen innovations."""
        model_config = ConfigDict(title=f"{p} implementation steps")
        steps: list[Step] = Field(min_length=1)

    return {
        ("bimtek_1", "readiness"): Readiness,
        ("bimtek_1", "swot"): Swot,
        ("bimtek_2", "innovation_programmes"): InnovationProgrammes,
        ("bimtek_2", "quick_win_candidates"): QuickWinCandidates,
        ("bimtek_3", "quick_win_profiles"): QuickWinProfiles,
        ("bimtek_3", "roadmap"): Roadmap,
        ("bimtek_4", "implementation_steps"): ImplementationSteps,
    }


TITLES = {
    "readiness": ("Kesiapan daerah", "Readiness assessment"),
    "swot": ("Analisis SWOT", "SWOT analysis"),
    "innovation_programmes": ("Program inovasi", "Innovation programmes"),
    "quick_win_candidates": ("Kandidat quick win", "Quick-win candidates"),
    "quick_win_profiles": ("Profil quick win dan register risiko",
                           "Quick-win profiles and risk registers"),
    "roadmap": ("Peta jalan 1, 5 dan 10 tahun", "1-, 5- and 10-year roadmap"),
    "implementation_steps": ("Langkah implementasi", "Implementation steps"),
}

Rule = Callable[[dict[str, Any], PlanState], list[FieldError]]


@dataclass
class StandardPillar:
    """One pillar built from the kit: identity, indicators, standard forms, rules, gates."""

    id: str
    name_id: str
    name_en: str
    elements: tuple[tuple[str, str, str], ...]  # (id, name_id, name_en)
    indicator_file: Traversable | None = None
    description: str = ""
    extra_forms: list[FormSpec] = field(default_factory=list)
    extra_rules: dict[str, list[Rule]] = field(default_factory=dict)  # form -> rules

    def __post_init__(self) -> None:
        self.spec = PillarSpec(
            id=self.id, name_id=self.name_id, name_en=self.name_en, description=self.description,
            elements=tuple(ElementSpec(id=e, name_id=i, name_en=n) for e, i, n in self.elements))
        self.models = build_models(self.id, tuple(e for e, _, _ in self.elements))
        self.indicators = list(self._read_indicators())

    def _read_indicators(self) -> Iterable[IndicatorSpec]:
        if self.indicator_file is None:
            return
        for row in csv.DictReader(self.indicator_file.read_text(encoding="utf-8").splitlines()):
            yield IndicatorSpec(pillar=self.id, **row)

    # ------------------------------------------------------------ hooks
    # A StandardPillar instance is itself the plugin object: its methods below are the
    # hook implementations, so a built-in pillar's entry point names its ``PILLAR``.
    @hookimpl
    def register_pillars(self, register: Callable[[PillarSpec], None]) -> None:
        register(self.spec)

    def form_specs(self) -> list[FormSpec]:
        elements = tuple(e for e, _, _ in self.elements)
        out = [FormSpec(pillar=self.id, stage=stage, form=form, model=model,
                        title_id=TITLES[form][0], title_en=TITLES[form][1],
                        example=partial(STANDARD_EXAMPLES[form], pillar=self.id,
                                        elements=elements))
               for (stage, form), model in self.models.items()]
        return out + list(self.extra_forms)

    @hookimpl
    def register_forms(self, register: Callable[[FormSpec], None]) -> None:
        for spec in self.form_specs():
            register(spec)

    @hookimpl
    def register_indicators(self, register: Callable[[IndicatorSpec], None]) -> None:
        for ind in self.indicators:
            register(ind)

    @hookimpl
    def validate_form(self, pillar: str, stage: str, form: str, data: dict[str, Any],
                      plan: PlanState) -> list[FieldError] | None:
        if pillar != self.id:
            return None
        rules = STANDARD_RULES.get(form, []) + self.extra_rules.get(form, [])
        errors: list[FieldError] = []
        for rule in rules:
            for err in rule(self, data, plan):  # type: ignore[call-arg]
                errors.append(FieldError(err.field, err.message, pillar=self.id, form=form,
                                         fix=err.fix))
        return errors

    @hookimpl
    def stage_gate(self, pillar: str, stage: str, plan: PlanState) -> list[str] | None:
        if pillar != self.id:
            return None
        mine = [q for q in plan.quick_wins.values() if q.pillar == self.id]
        missing: list[str] = []
        if stage == "bimtek_2" and not mine:
            missing.append("at least one proposed quick win (ProposeQuickWin)")
        if stage == "bimtek_3":
            profiled = _profiled(plan, self.id)
            for q in mine:
                if q.quick_win_id not in profiled:
                    missing.append(f"a profile with a risk register for quick win "
                                   f"{q.quick_win_id}")
        return missing

    # ------------------------------------------------------------ lookups
    def element_ids(self) -> set[str]:
        return {e for e, _, _ in self.elements}

    def indicator_ids(self) -> set[str]:
        return {i.id for i in self.indicators}


def _data(plan: PlanState, stage: str, pillar: str, form: str) -> dict[str, Any] | None:
    entry = plan.form(stage, pillar, form)
    return entry.data if entry else None


def _profiled(plan: PlanState, pillar: str) -> set[str]:
    data = _data(plan, "bimtek_3", pillar, "quick_win_profiles") or {}
    return {p["quick_win_id"] for p in data.get("profiles", []) if p.get("risks")}


def _programme_ids(plan: PlanState, pillar: str) -> set[str]:
    data = _data(plan, "bimtek_2", pillar, "innovation_programmes") or {}
    return {p["id"] for p in data.get("programmes", [])}


def _unique(items: list[dict[str, Any]], key: str, path: str) -> list[FieldError]:
    counts = Counter(i[key] for i in items)
    return [FieldError(f"{path}[{n}].{key}", f"{i[key]!r} is used more than once",
                       fix="give each a distinct id")
            for n, i in enumerate(items) if counts[i[key]] > 1]


def _agency(code: str, path: str) -> list[FieldError]:
    if code in agencies():
        return []
    return [FieldError(path, f"{code!r} is not a known agency (OPD) code",
                       fix="use a code from `smartcity agencies`, e.g. DISKOMINFO, BAPPEDA")]


# ------------------------------------------------------------ the expert team's rules
def rule_readiness(pillar: StandardPillar, data: dict[str, Any], plan: PlanState) -> list[FieldError]:
    errors = []
    for area in ("structure", "infrastructure", "superstructure"):
        a = data[area]
        if a["level"] >= 4 and not a["evidence"]:
            errors.append(FieldError(f"{area}.evidence", f"level {a['level']} (integrated or "
                                     "smart) needs evidence", fix="list the documents or "
                                     "systems that show it, or lower the level"))
    return errors


def rule_swot(pillar: StandardPillar, data: dict[str, Any], plan: PlanState) -> list[FieldError]:
    items = data["items"]
    errors = _unique(items, "id", "items")
    kinds = {i["kind"] for i in items}
    for kind in ("strength", "weakness", "opportunity", "threat"):
        if kind not in kinds:
            errors.append(FieldError("items", f"no {kind} listed",
                                     fix=f"add at least one item of kind {kind!r}"))
    for n, i in enumerate(items):
        errors += _agency(i["agency"], f"items[{n}].agency")
    return errors


def rule_programmes(pillar: StandardPillar, data: dict[str, Any], plan: PlanState) -> list[FieldError]:
    items = data["programmes"]
    errors = _unique(items, "id", "programmes")
    swot = _data(plan, "bimtek_1", pillar.id, "swot") or {"items": []}
    swot_ids = {i["id"] for i in swot["items"]}
    for n, prog in enumerate(items):
        errors += _agency(prog["agency"], f"programmes[{n}].agency")
        for ref in prog["swot_refs"]:
            if ref not in swot_ids:
                errors.append(FieldError(f"programmes[{n}].swot_refs", f"{ref!r} is not an item "
                                         f"of the {pillar.id} SWOT from bimtek I",
                                         fix="refer to SWOT item ids: "
                                         + (", ".join(sorted(swot_ids)) or "none submitted")))
    return errors


def rule_candidates(pillar: StandardPillar, data: dict[str, Any], plan: PlanState) -> list[FieldError]:
    items = data["candidates"]
    errors = _unique(items, "quick_win_id", "candidates")
    programmes = _programme_ids(plan, pillar.id)
    for n, c in enumerate(items):
        errors += _agency(c["agency"], f"candidates[{n}].agency")
        if not c["doable_within_12_months"]:
            errors.append(FieldError(f"candidates[{n}].doable_within_12_months",
                                     "a quick win must be doable within 12 months",
                                     fix="choose a smaller scope or make it a programme"))
        if c["programme_ref"] not in programmes:
            errors.append(FieldError(f"candidates[{n}].programme_ref",
                                     f"{c['programme_ref']!r} is not an innovation programme of "
                                     f"{pillar.id}", fix="submit innovation_programmes first, "
                                     "then refer to one of its ids"))
    return errors


def rule_profiles(pillar: StandardPillar, data: dict[str, Any], plan: PlanState) -> list[FieldError]:
    items = data["profiles"]
    errors = _unique(items, "quick_win_id", "profiles")
    mine = {q.quick_win_id for q in plan.quick_wins.values() if q.pillar == pillar.id}
    indicators = pillar.indicator_ids()
    for n, prof in enumerate(items):
        if prof["quick_win_id"] not in mine:
            errors.append(FieldError(f"profiles[{n}].quick_win_id",
                                     f"{prof['quick_win_id']!r} is not a proposed quick win of "
                                     f"{pillar.id}", fix="propose it first (ProposeQuickWin)"))
        ind = prof.get("output_indicator")
        if ind and ind not in indicators:
            errors.append(FieldError(f"profiles[{n}].output_indicator",
                                     f"{ind!r} is not an indicator of {pillar.id}",
                                     fix="see `smartcity indicators " + pillar.id + "`"))
        for r, risk in enumerate(prof["risks"]):
            score = risk["likelihood"] * risk["impact"]
            if score >= HIGH_RISK and not risk["mitigation"].strip():
                errors.append(FieldError(f"profiles[{n}].risks[{r}].mitigation",
                                         f"a risk scored {risk['likelihood']}x{risk['impact']}"
                                         f"={score} (>= {HIGH_RISK}) needs a mitigation",
                                         fix="describe how the risk is mitigated"))
    return errors


def rule_roadmap(pillar: StandardPillar, data: dict[str, Any], plan: PlanState) -> list[FieldError]:
    items = data["items"]
    errors = []
    year = plan.programme_year
    programmes = _programme_ids(plan, pillar.id)
    for h in (1, 5, 10):
        if not any(i["horizon"] == h for i in items):
            errors.append(FieldError("items", f"no {h}-year item",
                                     fix=f"add at least one item with horizon {h}"))
    for n, i in enumerate(items):
        first, last = year + 1, year + i["horizon"]
        if not first <= i["year"] <= last:
            errors.append(FieldError(f"items[{n}].year", f"{i['year']} is outside the "
                                     f"{i['horizon']}-year horizon of a {year} plan",
                                     fix=f"use a year from {first} to {last}"))
        if i["programme_ref"] not in programmes:
            errors.append(FieldError(f"items[{n}].programme_ref",
                                     f"{i['programme_ref']!r} is not an innovation programme of "
                                     f"{pillar.id}", fix="refer to a bimtek II programme id"))
    return errors


def rule_steps(pillar: StandardPillar, data: dict[str, Any], plan: PlanState) -> list[FieldError]:
    items = data["steps"]
    errors = _unique(items, "step_id", "steps")
    known = _programme_ids(plan, pillar.id) | {
        q.quick_win_id for q in plan.quick_wins.values() if q.pillar == pillar.id}
    year = plan.programme_year
    for n, s in enumerate(items):
        errors += _agency(s["owner_agency"], f"steps[{n}].owner_agency")
        start, end = date.fromisoformat(s["start"]), date.fromisoformat(s["end"])
        if end < start:
            errors.append(FieldError(f"steps[{n}].end", f"ends ({end}) before it starts ({start})",
                                     fix="swap or correct the dates"))
        if not year <= start.year <= year + HORIZON_YEARS:
            errors.append(FieldError(f"steps[{n}].start", f"{start} is outside the plan's "
                                     f"horizon {year}-{year + HORIZON_YEARS}",
                                     fix=f"start in a year from {year} to "
                                     f"{year + HORIZON_YEARS}"))
        if s["ref"] not in known:
            errors.append(FieldError(f"steps[{n}].ref", f"{s['ref']!r} is neither an innovation "
                                     f"programme nor a quick win of {pillar.id}",
                                     fix="refer to one of: " + (", ".join(sorted(known))
                                                                or "none submitted")))
    return errors


STANDARD_RULES: dict[str, list[Rule]] = {
    "readiness": [rule_readiness],  # type: ignore[list-item]
    "swot": [rule_swot],  # type: ignore[list-item]
    "innovation_programmes": [rule_programmes],  # type: ignore[list-item]
    "quick_win_candidates": [rule_candidates],  # type: ignore[list-item]
    "quick_win_profiles": [rule_profiles],  # type: ignore[list-item]
    "roadmap": [rule_roadmap],  # type: ignore[list-item]
    "implementation_steps": [rule_steps],  # type: ignore[list-item]
}
