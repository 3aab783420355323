"""Idempotent per-region operations that flows (and tests) run across a cohort.

Every command gets an id built from business inputs (programme, region, stage, form, review
round), never a random one, so a retried or re-run task writes nothing twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from engine.application import Engine
from engine.domain import plan as P
from engine.errors import TransitionError
from engine.roles import Actor, Role

FLOW_OPERATOR = Actor(id="flow:operator", role=Role.OPERATOR)
REVIEWER = Actor(id="tenaga-ahli-kominfo", role=Role.REVIEWER)


def command_id(*parts: object) -> str:
    return ":".join(str(p) for p in parts)


def officer_of(region: str) -> Actor:
    return Actor(id=f"diskominfo-{region}", role=Role.REGIONAL_OFFICER, region=region)


def regent_of(region: str) -> Actor:
    return Actor(id=f"kepala-daerah-{region}", role=Role.REGENT, region=region)


@dataclass
class StageOutcome:
    region: str
    stage: str
    completed: bool
    missing: dict[str, list[str]] = field(default_factory=dict)

    @property
    def missing_count(self) -> int:
        return sum(len(m) for m in self.missing.values())


def enrol(engine: Engine, programme: str, region: str, actor: Actor = FLOW_OPERATOR) -> None:
    engine.execute(actor, programme, region, P.EnrolRegion(programme_id=programme,
                                                           region_code=region),
                   command_id=command_id(programme, region, "enrol"))


def open_stage(engine: Engine, programme: str, region: str, stage: str,
               actor: Actor = FLOW_OPERATOR) -> None:
    """Open ``stage`` unless it is open already (a revision reopens bimtek IV by itself)."""
    state = engine.plan(programme, region)
    if state.stage == stage or P.STAGES.index(state.stage) > P.STAGES.index(stage):
        return
    engine.execute(actor, programme, region, P.StartStage(stage=stage),  # type: ignore[arg-type]
                   command_id=command_id(programme, region, "start", stage))


def close_stage(engine: Engine, programme: str, region: str, stage: str,
                actor: Actor = FLOW_OPERATOR) -> StageOutcome:
    """Complete ``stage`` where every pillar's gate passes; else report what is missing."""
    if stage not in P.BIMTEK_STAGES:
        return StageOutcome(region, stage, False, {"plan": [f"{stage} is not a bimtek stage: "
                                                            "it is not completed this way"]})
    state = engine.plan(programme, region)
    if P.STAGES.index(state.stage) > P.STAGES.index(stage) or (
            state.stage == stage and state.status == "done"):
        return StageOutcome(region, stage, True)
    if state.stage != stage:
        return StageOutcome(region, stage, False, {"plan": [f"stage {stage} is not open "
                                                            f"(plan is in {state.stage})"]})
    missing = {p: m for p, m in engine.registry.gate(state, stage).items() if m}
    if missing:
        return StageOutcome(region, stage, False, missing)
    engine.execute(actor, programme, region, P.CompleteStage(stage=stage),  # type: ignore[arg-type]
                   command_id=command_id(programme, region, "complete", stage,
                                         f"r{state.review_round}"))
    return StageOutcome(region, stage, True)


def fill_stage(engine: Engine, programme: str, region: str, stage: str, seed: int = 0,
               skip: frozenset[tuple[str, str]] = frozenset()) -> int:
    """Act as the region's officer: submit every form of ``stage`` with the forms' example
    content (seeded), proposing the quick-win candidates. Returns commands issued.

    ``skip`` holds (pillar, form) pairs to leave out, to simulate a late region."""
    officer = officer_of(region)
    state = engine.plan(programme, region)
    if state.stage != stage or state.status != "open":
        return 0  # nothing to fill: the stage is not (or no longer) open
    rnd = state.review_round
    rng = random.Random(f"{seed}:{programme}:{region}:{stage}:{rnd}")
    issued = 0
    for pillar in state.pillars:
        for spec in engine.registry.forms_for(pillar, stage):
            if (pillar, spec.form) in skip or spec.example is None:
                continue
            if state.form(stage, pillar, spec.form) is not None and rnd == 0:
                continue
            data = spec.example(state, rng)
            engine.execute(officer, programme, region,
                           P.SubmitForm(pillar=pillar, stage=stage, form=spec.form, data=data),  # type: ignore[arg-type]
                           command_id=command_id(programme, region, "form", stage, pillar,
                                                 spec.form, f"r{rnd}"))
            issued += 1
            if spec.form == "quick_win_candidates":
                for c in data["candidates"]:
                    engine.execute(officer, programme, region, P.ProposeQuickWin(
                        quick_win_id=c["quick_win_id"], pillar=pillar, name=c["name"],
                        agency=c["agency"], description=c["rationale"]),
                        command_id=command_id(programme, region, "quickwin", c["quick_win_id"]))
                    issued += 1
            state = engine.plan(programme, region)
    if stage == "bimtek_3":
        for qw in sorted(state.quick_wins):
            engine.execute(officer, programme, region, P.ReportQuickWinProgress(
                quick_win_id=qw, completion_percent=rng.randint(1, 99)),
                command_id=command_id(programme, region, "progress", qw, stage))
            issued += 1
    return issued


def review(engine: Engine, programme: str, region: str, *, return_first: bool,
           seed: int = 0) -> str:
    """Submit for review; the experts return it once with a finding when ``return_first``
    (the region then revises bimtek IV), else pass it. Returns the plan's stage after."""
    state = engine.plan(programme, region)
    if state.stage == "bimtek_4" and state.status == "done":
        engine.execute(officer_of(region), programme, region, P.SubmitForReview(),
                       command_id=command_id(programme, region, "submit-review",
                                             state.review_round + 1))
        state = engine.plan(programme, region)
    if state.stage != "review" or state.status != "open":
        return state.stage
    if return_first and state.review_round == 1:
        pillar = state.pillars[0]
        engine.execute(REVIEWER, programme, region, P.RecordReviewFinding(
            finding_id=f"F{state.review_round}-1", pillar=pillar, severity="major",
            text="Langkah implementasi belum menyebut tonggak capaian triwulan"),
            command_id=command_id(programme, region, "finding", state.review_round, 1))
        engine.execute(REVIEWER, programme, region, P.ReturnForRevision(
            reason="Perbaiki langkah implementasi sesuai temuan"),
            command_id=command_id(programme, region, "return", state.review_round))
        # the region revises bimtek IV and resubmits
        fill_stage(engine, programme, region, "bimtek_4", seed)
        outcome = close_stage(engine, programme, region, "bimtek_4")
        if not outcome.completed:
            raise TransitionError(f"revision of {region} left bimtek_4 incomplete: "
                                  f"{outcome.missing}")
        return review(engine, programme, region, return_first=False, seed=seed)
    engine.execute(REVIEWER, programme, region, P.PassReview(),
                   command_id=command_id(programme, region, "pass", state.review_round))
    return "review"


def approve(engine: Engine, programme: str, region: str, year: int) -> None:
    state = engine.plan(programme, region)
    if state.stage == "approved":
        return
    title = "Perbup" if state.head_title == "Bupati" else "Perwal"
    engine.execute(regent_of(region), programme, region, P.ApproveByRegent(
        regulation_number=f"{title} No. {int(region.replace('.', '')) % 97 + 1} Tahun {year + 1}",
        quick_wins_in_rpjmd=True), command_id=command_id(programme, region, "approve"))


# ---------------------------------------------------------------------------- after approval
def open_evaluation(engine: Engine, programme: str, year: int,
                    actor: Actor = FLOW_OPERATOR) -> None:
    if year not in engine.programme(programme).evaluation_years:
        engine.open_evaluation(actor, programme, year,
                               command_id=command_id(programme, "evaluation", year))


def simulate_evaluation(engine: Engine, programme: str, region: str, year: int,
                        seed: int = 0) -> None:
    """Act as the region (its yearly report) and the experts (their scores), with seeded,
    plausible figures: quick wins move towards completion, indicators drift."""
    state = engine.plan(programme, region)
    if state.stage != "approved":
        return
    rng = random.Random(f"{seed}:{programme}:{region}:evaluation:{year}")
    # about one region in five lags, every year (seeded per region, not per year)
    laggard = random.Random(f"{seed}:{programme}:{region}:laggard").random() < 0.2
    elapsed = year - state.programme_year
    earlier = [y for y in sorted(state.evaluations) if y < year]
    last = state.evaluations[earlier[-1]] if earlier else None
    quick_wins = {}
    for qid, qw in sorted(state.quick_wins.items()):
        before = last.quick_wins[qid]["completion_percent"] if last and qid in \
            last.quick_wins else qw.completion_percent
        pace = rng.choice((0, 5, 10)) if laggard else rng.choice((60, 75, 90, 100))
        quick_wins[qid] = {"completion_percent": min(100, before + pace),
                           "evidence": f"https://{region.replace('.', '')}.go.id/smartcity/"
                                       f"{year}/{qid.lower()}"}
    indicators = {}
    for pillar in state.pillars:
        for spec in engine.registry.indicators_of(pillar)[:3]:
            base = 40 + (sum(map(ord, spec.id + region)) % 50)
            drift = rng.randint(-3, 8) * (1 if spec.direction == "higher" else -1)
            value = max(0, base + drift * elapsed)
            indicators[spec.id] = f"{value}.{rng.randint(0, 9)}"
    if year not in state.evaluations:
        engine.execute(officer_of(region), programme, region, P.SubmitEvaluation(
            year=year, quick_wins=quick_wins, indicators=indicators),  # type: ignore[arg-type]
            command_id=command_id(programme, region, "evaluation", year))
    state = engine.plan(programme, region)
    if not state.evaluations[year].scores:
        base = 1 + elapsed // 2 if laggard else 2 + elapsed
        scores = {p: min(5, max(1, base + rng.randint(-1, 1))) for p in state.pillars}
        weakest = min(scores, key=lambda p: (scores[p], p))
        engine.execute(REVIEWER, programme, region, P.ScoreEvaluation(
            year=year, scores=scores,
            findings=(f"Pilar {weakest} perlu penguatan tata kelola data",)),
            command_id=command_id(programme, region, "score", year))
