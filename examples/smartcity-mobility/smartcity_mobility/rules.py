"""What the expert team checks in the mobility forms, and what each stage still needs.

Every rule reads the submitted data (already accepted by the form's model) and the plan's
state before the submission; it returns field errors and never raises for such input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from itertools import pairwise
from typing import Any

from engine.domain.plan import PlanState
from engine.errors import FieldError
from engine.forms import agencies
from smartcity_mobility.indicators import INDICATORS, PILLAR_ID, derived_baseline, is_percent

Rule = Callable[[dict[str, Any], PlanState], list[FieldError]]
MAX_QUICK_WIN_DAYS = 366  # a quick win is doable within 12 months
HORIZONS = ("baseline", "target_1y", "target_5y", "target_10y")


def _unique(items: list[dict[str, Any]], key: str, path: str) -> list[FieldError]:
    counts = Counter(i[key] for i in items)
    return [FieldError(f"{path}[{n}].{key}", f"{i[key]!r} is used more than once",
                       fix="give each a distinct id")
            for n, i in enumerate(items) if counts[i[key]] > 1]


def _agency(code: str, path: str) -> list[FieldError]:
    if code in agencies():
        return []
    return [FieldError(path, f"{code!r} is not a known agency (OPD) code",
                       fix="use a code from `smartcity agencies`, e.g. DISHUB, DPUPR")]


def _mobility_quick_wins(plan: PlanState) -> set[str]:
    return {q for q, qw in plan.quick_wins.items() if qw.pillar == PILLAR_ID}


# ------------------------------------------------------------------ bimtek I
def rule_baseline(data: dict[str, Any], plan: PlanState) -> list[FieldError]:
    errors = []
    if data["year"] > plan.programme_year:
        errors.append(FieldError("year", f"{data['year']} is after the programme year "
                                 f"{plan.programme_year}", fix="give the latest complete year"))
    if data["adaptive_intersections"] > data["signalised_intersections"]:
        errors.append(FieldError("adaptive_intersections",
                                 f"{data['adaptive_intersections']} adaptive intersections but "
                                 f"only {data['signalised_intersections']} signalised",
                                 fix="adaptive (ATCS) intersections are among the signalised"))
    routes, fleet = data["public_transport_routes"], data["public_transport_fleet"]
    if (routes == 0) != (fleet == 0):
        errors.append(FieldError("public_transport_fleet", f"{routes} routes served by "
                                 f"{fleet} vehicles", fix="count both, or neither"))
    if fleet == 0 and data["annual_public_transport_trips"] > 0:
        errors.append(FieldError("annual_public_transport_trips", "trips are counted but no "
                                 "public transport vehicle", fix="count the fleet or set 0"))
    return errors


# ------------------------------------------------------------------ bimtek II
def rule_candidates(data: dict[str, Any], plan: PlanState) -> list[FieldError]:
    items = data["candidates"]
    errors = _unique(items, "quick_win_id", "candidates")
    for n, c in enumerate(items):
        errors += _agency(c["agency"], f"candidates[{n}].agency")
        if not c["doable_within_12_months"]:
            errors.append(FieldError(f"candidates[{n}].doable_within_12_months",
                                     "a quick win must be doable within 12 months",
                                     fix="choose a smaller scope"))
        ind = INDICATORS.get(c["indicator"])
        if ind is None:
            errors.append(FieldError(f"candidates[{n}].indicator", f"{c['indicator']!r} is not "
                                     "a mobility indicator", fix="see `smartcity indicators "
                                     "mobility`"))
        elif ind.element != c["element"]:
            errors.append(FieldError(f"candidates[{n}].indicator", f"{ind.id} measures "
                                     f"{ind.element}, not {c['element']}",
                                     fix=f"pick an indicator of {c['element']}"))
        other = plan.quick_wins.get(c["quick_win_id"])
        if other is not None and other.pillar != PILLAR_ID:
            errors.append(FieldError(f"candidates[{n}].quick_win_id", f"{c['quick_win_id']!r} "
                                     f"is already a quick win of {other.pillar}",
                                     fix="choose another id"))
    return errors


# ------------------------------------------------------------------ bimtek III
def _target_errors(n: int, row: dict[str, Any], plan: PlanState) -> list[FieldError]:
    ind = INDICATORS.get(row["indicator"])
    if ind is None:
        return [FieldError(f"targets[{n}].indicator", f"{row['indicator']!r} is not a "
                           "mobility indicator", fix="see `smartcity indicators mobility`")]
    errors = []
    values = [Decimal(row[h]) for h in HORIZONS]
    expected = derived_baseline(plan, ind.id)
    if expected is not None and values[0] != expected:
        errors.append(FieldError(f"targets[{n}].baseline", f"the bimtek I transport baseline "
                                 f"gives {ind.id} = {expected}, not {values[0]}",
                                 fix=f"use {expected}"))
    for h, (before, after) in zip(HORIZONS[1:], pairwise(values), strict=True):
        backwards = after < before if ind.direction == "higher" else after > before
        if backwards:
            errors.append(FieldError(f"targets[{n}].{h}", f"{ind.id} is better when "
                                     f"{ind.direction}, but {h} ({after}) goes the other way "
                                     f"from {before}", fix="targets may not get worse"))
    if is_percent(ind):
        errors += [FieldError(f"targets[{n}].{h}", f"{v} is more than 100%")
                   for h, v in zip(HORIZONS, values, strict=True) if v > 100]
    return errors


def rule_targets(data: dict[str, Any], plan: PlanState) -> list[FieldError]:
    items = data["targets"]
    errors = _unique(items, "indicator", "targets")
    for n, row in enumerate(items):
        errors += _target_errors(n, row, plan)
    return errors


# ------------------------------------------------------------------ bimtek IV
def rule_implementation(data: dict[str, Any], plan: PlanState) -> list[FieldError]:
    items = data["steps"]
    errors = _unique(items, "step_id", "steps")
    mine = _mobility_quick_wins(plan)
    year = plan.programme_year
    for n, s in enumerate(items):
        errors += _agency(s["agency"], f"steps[{n}].agency")
        if s["quick_win_id"] not in mine:
            errors.append(FieldError(f"steps[{n}].quick_win_id", f"{s['quick_win_id']!r} is "
                                     "not a mobility quick win of this plan",
                                     fix="one of: " + (", ".join(sorted(mine)) or "none yet")))
        start, end = date.fromisoformat(s["start"]), date.fromisoformat(s["end"])
        if end < start:
            errors.append(FieldError(f"steps[{n}].end", f"ends ({end}) before it starts "
                                     f"({start})", fix="swap or correct the dates"))
        elif (end - start).days > MAX_QUICK_WIN_DAYS:
            errors.append(FieldError(f"steps[{n}].end", f"{(end - start).days} days: a quick "
                                     "win's step must fit in 12 months", fix="split the step"))
        if not year <= start.year <= year + 1:
            errors.append(FieldError(f"steps[{n}].start", f"{start} is not in {year} or "
                                     f"{year + 1}", fix="quick wins start within a year"))
    return errors


RULES: dict[str, Rule] = {
    "transport_baseline": rule_baseline,
    "quick_win_candidates": rule_candidates,
    "mobility_targets": rule_targets,
    "implementation_plan": rule_implementation,
}


# ------------------------------------------------------------------ stage gates
def _data(plan: PlanState, stage: str, form: str) -> dict[str, Any]:
    entry = plan.form(stage, PILLAR_ID, form)
    return entry.data if entry else {}


def missing_for(stage: str, plan: PlanState) -> list[str]:
    """What the mobility pillar still needs before ``stage`` can be completed (beyond the
    required forms, which the engine checks itself)."""
    mine = _mobility_quick_wins(plan)
    candidates = _data(plan, "bimtek_2", "quick_win_candidates").get("candidates", [])
    if stage == "bimtek_2":
        out = [f"quick win {c['quick_win_id']} of quick_win_candidates proposed "
               "(ProposeQuickWin)" for c in candidates if c["quick_win_id"] not in mine]
        return out if mine or out else ["at least one proposed mobility quick win"]
    if stage == "bimtek_3":
        targeted = {t["indicator"] for t in _data(plan, "bimtek_3", "mobility_targets")
                    .get("targets", [])}
        return [f"a target for {c['indicator']} (quick win {c['quick_win_id']}) in "
                "mobility_targets" for c in candidates
                if c["quick_win_id"] in mine and c["indicator"] not in targeted]
    if stage == "bimtek_4":
        planned = {s["quick_win_id"] for s in _data(plan, "bimtek_4", "implementation_plan")
                   .get("steps", [])}
        return [f"an implementation step for quick win {q} in implementation_plan"
                for q in sorted(mine - planned)]
    return []
