"""Read-side summaries built from plans' state (the cohort progress report)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from engine.application import Engine
from engine.domain.plan import BIMTEK_STAGES, STAGES, PlanState
from engine.pillars import PillarRegistry
from engine.regions import all_regions


def risk_register(plan: PlanState, quick_win_id: str) -> list[object]:
    """A quick win's risks: its bimtek III profile's and those recorded as events."""
    from engine.exports import risk_register as register

    return list(register(plan, quick_win_id))


def forms_progress(registry: PillarRegistry, plan: PlanState) -> dict[str, dict[str, int]]:
    """Per pillar: required forms of the stages reached so far, and how many are in."""
    reached = [s for s in BIMTEK_STAGES if STAGES.index(s) <= STAGES.index(plan.stage)]
    out: dict[str, dict[str, int]] = {}
    for pillar in plan.pillars:
        required = [(s, f.form) for s in reached for f in registry.forms_for(pillar, s)
                    if f.required]
        done = sum(1 for s, f in required if plan.form(s, pillar, f) is not None)
        out[pillar] = {"required": len(required), "submitted": done}
    return out


def plan_summary(registry: PillarRegistry, plan: PlanState) -> dict[str, Any]:
    region = all_regions().get(plan.region_code)
    qws = list(plan.quick_wins.values())
    return {
        "region_code": plan.region_code,
        "region_name": plan.region_name,
        "kind": plan.region_kind,
        "province": region.province if region else "",
        "stage": plan.stage,
        "status": plan.status,
        "review_round": plan.review_round,
        "findings": len(plan.findings),
        "forms": forms_progress(registry, plan),
        "quick_wins": [{"id": q.quick_win_id, "pillar": q.pillar, "name": q.name,
                        "completion_percent": q.completion_percent,
                        "risks": len(risk_register(plan, q.quick_win_id))}
                       for q in qws],
        "mean_completion": round(sum(q.completion_percent for q in qws) / len(qws), 1)
        if qws else None,
        "version": plan.version,
    }


def cohort_report(engine: Engine, programme_id: str) -> dict[str, Any]:
    programme = engine.programme(programme_id)
    plans = {p.region_code: p for p in engine.plans(programme_id)}
    rows = [plan_summary(engine.registry, plans[c]) for c in programme.region_codes if c in plans]
    by_stage = Counter(r["stage"] for r in rows)
    qw_by_pillar: dict[str, dict[str, Any]] = {}
    for r in rows:
        for q in r["quick_wins"]:
            slot = qw_by_pillar.setdefault(q["pillar"], {"count": 0, "completion": []})
            slot["count"] += 1
            slot["completion"].append(q["completion_percent"])
    return {
        "programme": programme.to_dict(),
        "regions": rows,
        "not_enrolled": [c for c in programme.region_codes if c not in plans],
        "stages": {s: by_stage.get(s, 0) for s in STAGES},
        "quick_wins_by_pillar": {
            p: {"count": v["count"],
                "mean_completion": round(sum(v["completion"]) / len(v["completion"]), 1)}
            for p, v in qw_by_pillar.items()},
        "returned_by_review": sum(1 for r in rows if r["review_round"] > 1),
    }
