"""The yearly evaluation after approval: how each region implements its plan.

Documented rules (docs/evaluation.md):

- **Expected quick-win progress.** A quick win is scheduled by its implementation steps
  (bimtek IV): from the earliest step's start to the latest step's end, completion is
  expected to grow linearly, reaching 100 % at the end. A quick win without steps is a
  1-year roadmap item: expected from 1 January to 31 December of the year after the
  programme year. Progress is judged at the end of the evaluation year.
- **Behind on a quick win**: reported completion more than ``TOLERANCE`` points below
  the expectation, or not reported at all.
- **Indicator trend**: from the first to the last measured value up to the evaluation
  year, "improving" when it moved in the indicator's better direction, "worsening" when
  it moved against it, "flat" otherwise.
- **Maturity**: the expert team's score per pillar, 1 Rintisan (initiating) to 5 Optimal
  (optimised); see engine.domain.plan.MATURITY.
- **A region is falling behind** when it did not submit, when any quick win is behind,
  when its mean maturity is below ``MIN_MATURITY``, or when more of its indicators
  worsen than improve.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from engine.application import Engine
from engine.domain.plan import MATURITY, PlanState

TOLERANCE = 20  # percentage points
MIN_MATURITY = 2.5


def expected_completion(plan: PlanState, quick_win_id: str, year: int) -> int:
    """Percent of ``quick_win_id`` the plan's own schedule expects by the end of ``year``."""
    starts, ends = [], []
    for entry in plan.forms_of_all("bimtek_4", "implementation_steps"):
        for step in entry.data.get("steps", []):
            if step.get("ref") == quick_win_id:
                starts.append(date.fromisoformat(str(step["start"])))
                ends.append(date.fromisoformat(str(step["end"])))
    if starts:
        start, end = min(starts), max(ends)
    else:
        start, end = date(plan.programme_year + 1, 1, 1), date(plan.programme_year + 1, 12, 31)
    judged = date(year, 12, 31)
    if judged >= end:
        return 100
    if judged <= start:
        return 0
    return int(100 * (judged - start).days / max(1, (end - start).days))


def trend(values: dict[int, str], direction: str) -> str:
    if len(values) < 2:
        return "single value" if values else "no data"
    years = sorted(values)
    first, last = Decimal(values[years[0]]), Decimal(values[years[-1]])
    if first == last:
        return "flat"
    better = last > first if direction == "higher" else last < first
    return "improving" if better else "worsening"


def region_evaluation(engine: Engine, plan: PlanState, year: int) -> dict[str, Any]:
    current = plan.evaluations.get(year)
    earlier = [y for y in sorted(plan.evaluations) if y < year]
    previous = plan.evaluations[earlier[-1]] if earlier else None
    quick_wins = []
    for qid, qw in sorted(plan.quick_wins.items()):
        reported = current.quick_wins.get(qid) if current else None
        before = previous.quick_wins.get(qid) if previous else None
        completion = reported["completion_percent"] if reported else None
        expected = expected_completion(plan, qid, year)
        quick_wins.append({
            "id": qid, "pillar": qw.pillar, "name": qw.name, "completion": completion,
            "previous": before["completion_percent"] if before else None,
            "expected": expected, "evidence": reported["evidence"] if reported else None,
            "behind": completion is None or completion < expected - TOLERANCE})
    indicators = []
    for pillar in plan.pillars:
        for spec in engine.registry.indicators_of(pillar):
            values = {y: e.indicators[spec.id] for y, e in sorted(plan.evaluations.items())
                      if y <= year and spec.id in e.indicators}
            if values:
                indicators.append({"id": spec.id, "pillar": pillar, "name": spec.name_en,
                                   "unit": spec.unit, "direction": spec.direction,
                                   "values": {str(y): v for y, v in values.items()},
                                   "trend": trend(values, spec.direction)})
    scores = dict(current.scores) if current else {}
    mean_maturity = round(sum(scores.values()) / len(scores), 2) if scores else None
    done = [q["completion"] for q in quick_wins if q["completion"] is not None]
    reasons = []
    if current is None:
        reasons.append(f"no {year} evaluation submitted")
    behind_qws = [q["id"] for q in quick_wins if q["behind"]]
    if current is not None and behind_qws:
        reasons.append(f"quick wins behind schedule: {', '.join(behind_qws)}")
    if mean_maturity is not None and mean_maturity < MIN_MATURITY:
        reasons.append(f"mean maturity {mean_maturity} below {MIN_MATURITY}")
    worse = sum(1 for i in indicators if i["trend"] == "worsening")
    better = sum(1 for i in indicators if i["trend"] == "improving")
    if worse > better:
        reasons.append(f"{worse} indicators worsening, {better} improving")
    return {
        "region_code": plan.region_code, "region_name": plan.region_name,
        "submitted": current is not None, "scored": bool(scores),
        "quick_wins": quick_wins,
        "mean_completion": round(sum(done) / len(done), 1) if done else None,
        "indicators": indicators,
        "maturity": {p: {"score": s, "level": MATURITY[s]} for p, s in sorted(scores.items())},
        "mean_maturity": mean_maturity,
        "findings": list(current.findings) if current else [],
        "roadmap_due": sum(1 for e in plan.forms_of_all("bimtek_3", "roadmap")
                           for item in e.data.get("items", []) if item.get("year", 0) <= year),
        "behind": bool(reasons), "reasons": reasons,
    }


def evaluation_report(engine: Engine, programme_id: str, year: int) -> dict[str, Any]:
    """Regions compared for one evaluation year (with earlier years for trends)."""
    programme = engine.programme(programme_id)
    plans = [p for p in engine.plans(programme_id) if p.stage == "approved"]
    regions = [region_evaluation(engine, p, year) for p in sorted(plans,
                                                                   key=lambda p: p.region_code)]
    by_pillar: dict[str, list[int]] = {}
    for r in regions:
        for pillar, m in r["maturity"].items():
            by_pillar.setdefault(pillar, []).append(m["score"])
    completions = [r["mean_completion"] for r in regions if r["mean_completion"] is not None]
    return {
        "programme": programme_id, "year": year,
        "opened": year in programme.evaluation_years,
        "regions": regions,
        "cohort": {
            "approved": len(regions),
            "submitted": sum(1 for r in regions if r["submitted"]),
            "scored": sum(1 for r in regions if r["scored"]),
            "mean_completion": round(sum(completions) / len(completions), 1)
            if completions else None,
            "mean_maturity_by_pillar": {p: round(sum(v) / len(v), 2)
                                        for p, v in sorted(by_pillar.items())},
            "falling_behind": [r["region_code"] for r in regions if r["behind"]],
        },
    }
