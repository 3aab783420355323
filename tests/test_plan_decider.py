"""The plan aggregate on its own: given events / when command / then events. No database.

States are built by folding events with ``evolve``; commands go through ``decide``.
"""

from __future__ import annotations

from datetime import date

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.domain.plan import (
    BIMTEK_STAGES,
    STAGES,
    ApprovalRefused,
    ApproveByRegent,
    ApprovedByRegent,
    CompleteStage,
    Context,
    EnrolRegion,
    FormSubmitted,
    PassReview,
    PlanEnrolled,
    PlanState,
    ProposeQuickWin,
    QuickWinProgressReported,
    QuickWinProposed,
    QuickWinRiskRecorded,
    RecordQuickWinRisk,
    RecordReviewFinding,
    RefuseApproval,
    ReportQuickWinProgress,
    ReturnedForRevision,
    ReturnForRevision,
    ReviewFindingRecorded,
    ReviewPassed,
    StageCompleted,
    StageStarted,
    StartStage,
    SubmitForm,
    SubmitForReview,
    SubmittedForReview,
    allowed_commands,
    decide,
    evolve,
    fold,
)
from engine.errors import TransitionError, ValidationError
from engine.regions import get_region
from engine.roles import Actor, Role

PROGRAMME = "m100-2023"
REGION = get_region("35.02")  # Kabupaten Ponorogo, led by a Bupati
PILLARS = ("governance", "branding", "economy", "living", "society", "environment")
YEAR = 2023

OPERATOR = Actor(id="op-kominfo", role=Role.OPERATOR)
REVIEWER = Actor(id="ta-reviewer", role=Role.REVIEWER)
REGENT = Actor(id="bupati-ponorogo", role=Role.REGENT, region="35.02")
OPEN_GATE = {"governance": [], "economy": []}


def ctx(actor: Actor = OPERATOR, gate: dict[str, list[str]] | None = None) -> Context:
    return Context(actor=actor, gate=dict(OPEN_GATE if gate is None else gate), region=REGION,
                   pillars=PILLARS, year=YEAR)


ENROLLED = PlanEnrolled(programme_id=PROGRAMME, region_code="35.02",
                        region_name="Kabupaten Ponorogo", region_kind="kabupaten",
                        head_title="Bupati", pillars=PILLARS, programme_year=YEAR)
QW1 = QuickWinProposed(quick_win_id="qw-1", pillar="economy", name="Pasar digital",
                       agency="Dinas Perdagangan", description="QRIS di pasar")
FINDING_R1 = ReviewFindingRecorded(finding_id="f-1", round=1, pillar="governance",
                                   severity="major", text="SOP belum lengkap",
                                   reviewer=REVIEWER.id)

# Every (stage, status) a plan can be in; "none" means not enrolled yet.
STATE_KEYS = ["none", "enrolled"] + [f"{s}:{st_}" for s in BIMTEK_STAGES
                                     for st_ in ("open", "done")] + [
    "review:open", "review:done", "approved"]


def history(key: str) -> list:
    """Events leading to ``key``. A quick win ``qw-1`` is proposed during bimtek_2 and the
    review round 1 has finding ``f-1``, so commands needing them can be tried later on."""
    if key == "none":
        return []
    events: list = [ENROLLED]
    if key == "enrolled":
        return events
    target, _, status = key.partition(":")
    for s in BIMTEK_STAGES:
        events.append(StageStarted(stage=s))
        if s == "bimtek_2":
            events.append(QW1)
        if s == target and status == "open":
            return events
        events.append(StageCompleted(stage=s))
        if s == target:
            return events
    events += [SubmittedForReview(round=1), FINDING_R1]
    if key == "review:open":
        return events
    events.append(ReviewPassed(round=1, reviewer=REVIEWER.id))
    if key == "review:done":
        return events
    assert key == "approved"
    events.append(ApprovedByRegent(regent=REGENT.id, head_title="Bupati"))
    return events


def state_of(key: str) -> PlanState | None:
    return fold(history(key))


def where(state: PlanState) -> str:
    return f"{state.stage} ({'in progress' if state.status == 'open' else 'completed'})"


def test_history_reaches_each_key() -> None:
    """Guard for the fixtures below: each key folds to the stage/status it names."""
    assert state_of("none") is None
    for key in STATE_KEYS[1:]:
        s = state_of(key)
        stage, _, status = key.partition(":")
        assert s.stage == stage
        assert s.status == (status or "done")


# ------------------------------------------------------------------ transition matrix
def _cmd_rows() -> list[tuple[str, object, set[str], type]]:
    """(label, command, state keys where it is allowed, event type it emits)."""
    rows: list[tuple[str, object, set[str], type]] = [
        ("EnrolRegion", EnrolRegion(programme_id=PROGRAMME, region_code="35.02"), {"none"},
         PlanEnrolled),
    ]
    previous = "enrolled"
    for s in BIMTEK_STAGES:
        prev_key = "enrolled" if previous == "enrolled" else f"{previous}:done"
        rows.append((f"StartStage({s})", StartStage(stage=s), {prev_key}, StageStarted))
        rows.append((f"CompleteStage({s})", CompleteStage(stage=s), {f"{s}:open"},
                     StageCompleted))
        rows.append((f"SubmitForm({s})", SubmitForm(pillar="governance", stage=s,
                                                     form="profil", data={"a": 1}),
                     {f"{s}:open"}, FormSubmitted))
        previous = s
    from_b3 = {"bimtek_3:open", "bimtek_3:done", "bimtek_4:open", "bimtek_4:done",
               "review:open", "review:done", "approved"}
    rows += [
        ("ProposeQuickWin", ProposeQuickWin(quick_win_id="qw-2", pillar="living",
                                            name="Puskesmas online", agency="Dinkes"),
         {"bimtek_2:open", "bimtek_3:open"}, QuickWinProposed),
        ("RecordQuickWinRisk", RecordQuickWinRisk(quick_win_id="qw-1", risk_id="r-1",
                                                  description="anggaran", likelihood=2,
                                                  impact=3, handling="mitigate"),
         {"bimtek_3:open", "bimtek_4:open"}, QuickWinRiskRecorded),
        ("ReportQuickWinProgress", ReportQuickWinProgress(quick_win_id="qw-1",
                                                          completion_percent=40),
         from_b3, QuickWinProgressReported),
        ("SubmitForReview", SubmitForReview(), {"bimtek_4:done"}, SubmittedForReview),
        ("RecordReviewFinding", RecordReviewFinding(finding_id="f-2", text="kurang data"),
         {"review:open"}, ReviewFindingRecorded),
        ("PassReview", PassReview(), {"review:open"}, ReviewPassed),
        ("ReturnForRevision", ReturnForRevision(reason="perbaiki"), {"review:open"},
         ReturnedForRevision),
        ("ApproveByRegent", ApproveByRegent(), {"review:done"}, ApprovedByRegent),
        ("RefuseApproval", RefuseApproval(reason="belum sesuai RPJMD"), {"review:done"},
         ApprovalRefused),
    ]
    return rows


CMD_ROWS = _cmd_rows()
MATRIX = [pytest.param(key, cmd, key in ok, ev_type, id=f"{label}@{key}")
          for label, cmd, ok, ev_type in CMD_ROWS for key in STATE_KEYS]


@pytest.mark.parametrize(("key", "command", "allowed", "event_type"), MATRIX)
def test_transition_matrix(key: str, command, allowed: bool, event_type: type) -> None:
    """Every command against every stage: allowed exactly where the lifecycle says so,
    refused elsewhere with a TransitionError naming the stage and what is allowed."""
    state = state_of(key)
    before = None if state is None else state.to_dict()
    actor = REGENT if event_type in (ApprovedByRegent, ApprovalRefused) else (
        REVIEWER if event_type in (ReviewFindingRecorded, ReviewPassed, ReturnedForRevision)
        else OPERATOR)
    if allowed:
        events = decide(state, command, ctx(actor))
        assert [type(e) for e in events] == [event_type]
        after = evolve(state, events[0])  # evolve accepts what decide produced
        assert after.stage in STAGES
    else:
        with pytest.raises(TransitionError) as exc:
            decide(state, command, ctx(actor))
        err = exc.value
        assert err.allowed == allowed_commands(state)
        assert err.allowed  # there is always something one may do next
        if state is None:
            assert err.stage is None
            assert err.allowed == ["EnrolRegion"]
        else:
            assert err.stage == where(state)
            assert f"the plan is in stage {where(state)!r}" in str(err)
            assert "allowed from there: " + ", ".join(err.allowed) in str(err)
    # decide never mutates the state it was given
    assert (None if state is None else state.to_dict()) == before


# ------------------------------------------------------------------ enrol
def test_enrol_region_emits_plan_enrolled_from_context() -> None:
    events = decide(None, EnrolRegion(programme_id=PROGRAMME, region_code="35.02"), ctx())
    assert events == [PlanEnrolled(programme_id=PROGRAMME, region_code="35.02",
                                   region_name="Kabupaten Ponorogo", region_kind="kabupaten",
                                   head_title="Bupati", pillars=PILLARS, programme_year=YEAR)]
    state = evolve(None, events[0])
    assert (state.stage, state.status, state.review_round) == ("enrolled", "done", 0)
    assert state.pillars == PILLARS
    assert state.plan_id == "plan:m100-2023:35.02"
    assert allowed_commands(state) == ["StartStage(bimtek_1)"]


def test_enrol_region_twice_is_refused() -> None:
    state = fold([ENROLLED])
    with pytest.raises(TransitionError, match="35.02 is already enrolled") as exc:
        decide(state, EnrolRegion(programme_id=PROGRAMME, region_code="35.02"), ctx())
    assert exc.value.stage == "enrolled (completed)"
    assert exc.value.allowed == ["StartStage(bimtek_1)"]


def test_events_before_enrolment_are_rejected_by_evolve() -> None:
    with pytest.raises(TransitionError, match="before the plan was enrolled"):
        evolve(None, StageStarted(stage="bimtek_1"))


# ------------------------------------------------------------------ start stage
@pytest.mark.parametrize("i", range(4))
def test_start_stage_after_previous_completed(i: int) -> None:
    stage = BIMTEK_STAGES[i]
    key = "enrolled" if i == 0 else f"{BIMTEK_STAGES[i - 1]}:done"
    state = state_of(key)
    events = decide(state, StartStage(stage=stage), ctx())
    assert events == [StageStarted(stage=stage, revision=False)]
    after = evolve(state, events[0])
    assert (after.stage, after.status) == (stage, "open")


@pytest.mark.parametrize("i", range(1, 4))
def test_start_stage_refused_while_previous_in_progress(i: int) -> None:
    stage, previous = BIMTEK_STAGES[i], BIMTEK_STAGES[i - 1]
    state = state_of(f"{previous}:open")
    with pytest.raises(TransitionError) as exc:
        decide(state, StartStage(stage=stage), ctx())
    err = exc.value
    assert f"{stage} can start only after {previous} is completed" in str(err)
    assert err.stage == f"{previous} (in progress)"
    assert err.allowed == [f"SubmitForm({previous})", f"CompleteStage({previous})"] + (
        ["ProposeQuickWin"] if previous in ("bimtek_2", "bimtek_3") else []) + (
        ["RecordQuickWinRisk"] if previous == "bimtek_3" else []) + (
        ["ReportQuickWinProgress", "PresentQuickWin", "AdviseQuickWin"]
        if previous == "bimtek_3" else []) + ["RecordBimtekSession"]


def test_start_stage_refused_when_skipping_ahead() -> None:
    state = state_of("enrolled")
    with pytest.raises(TransitionError) as exc:
        decide(state, StartStage(stage="bimtek_3"), ctx())
    assert "bimtek_3 can start only after bimtek_2 is completed" in str(exc.value)
    assert exc.value.stage == "enrolled (completed)"
    assert exc.value.allowed == ["StartStage(bimtek_1)"]


def test_start_stage_refused_going_backwards() -> None:
    state = state_of("bimtek_2:done")
    with pytest.raises(TransitionError) as exc:
        decide(state, StartStage(stage="bimtek_1"), ctx())
    assert exc.value.stage == "bimtek_2 (completed)"
    assert exc.value.allowed == ["StartStage(bimtek_3)", "RecordBimtekSession"]


@pytest.mark.parametrize("stage", BIMTEK_STAGES)
def test_start_stage_refused_when_already_in_progress(stage: str) -> None:
    state = state_of(f"{stage}:open")
    with pytest.raises(TransitionError, match=f"{stage} is already in progress") as exc:
        decide(state, StartStage(stage=stage), ctx())
    assert exc.value.stage == f"{stage} (in progress)"
    assert f"CompleteStage({stage})" in exc.value.allowed


@pytest.mark.parametrize("stage", BIMTEK_STAGES)
def test_start_stage_refused_when_already_completed(stage: str) -> None:
    state = state_of(f"{stage}:done")
    with pytest.raises(TransitionError) as exc:
        decide(state, StartStage(stage=stage), ctx())
    assert exc.value.stage == f"{stage} (completed)"


@pytest.mark.parametrize("stage", BIMTEK_STAGES)
def test_start_stage_refused_when_not_enrolled(stage: str) -> None:
    with pytest.raises(TransitionError, match="not enrolled") as exc:
        decide(None, StartStage(stage=stage), ctx())
    assert exc.value.stage is None
    assert exc.value.allowed == ["EnrolRegion"]


def test_start_stage_rejects_non_bimtek_stage_at_construction() -> None:
    with pytest.raises(pydantic.ValidationError):
        StartStage(stage="review")
    with pytest.raises(pydantic.ValidationError):
        StartStage(stage="bimtek_5")


# ------------------------------------------------------------------ complete stage
@pytest.mark.parametrize("stage", BIMTEK_STAGES)
def test_complete_stage_with_empty_gate(stage: str) -> None:
    state = state_of(f"{stage}:open")
    events = decide(state, CompleteStage(stage=stage), ctx(gate={"governance": []}))
    assert events == [StageCompleted(stage=stage)]
    after = evolve(state, events[0])
    assert (after.stage, after.status) == (stage, "done")


def test_complete_stage_refused_with_missing_items() -> None:
    state = state_of("bimtek_1:open")
    gate = {"governance": ["profil_daerah", "sop"], "economy": [], "living": ["rpjmd_link"]}
    with pytest.raises(TransitionError) as exc:
        decide(state, CompleteStage(stage="bimtek_1"), ctx(gate=gate))
    err = exc.value
    assert err.missing == {"governance": ["profil_daerah", "sop"], "living": ["rpjmd_link"]}
    assert "economy" not in err.missing  # an empty list means that pillar is complete
    assert "bimtek_1 cannot be completed, missing: governance: profil_daerah, sop; " \
           "living: rpjmd_link" in str(err)
    assert err.stage == "bimtek_1 (in progress)"
    assert err.allowed == ["SubmitForm(bimtek_1)", "CompleteStage(bimtek_1)",
                           "RecordBimtekSession"]
    assert err.to_dict()["missing"] == err.missing


def test_complete_stage_refused_when_not_in_progress() -> None:
    state = state_of("bimtek_1:done")
    with pytest.raises(TransitionError, match=r"CompleteStage\(bimtek_1\) is allowed only "
                                              "while bimtek_1 is in progress") as exc:
        decide(state, CompleteStage(stage="bimtek_1"), ctx())
    assert exc.value.stage == "bimtek_1 (completed)"
    assert exc.value.missing == {}


def test_complete_stage_refused_for_another_stage() -> None:
    state = state_of("bimtek_2:open")
    with pytest.raises(TransitionError) as exc:
        decide(state, CompleteStage(stage="bimtek_3"), ctx())
    assert exc.value.stage == "bimtek_2 (in progress)"


def test_complete_stage_refused_when_not_enrolled() -> None:
    with pytest.raises(TransitionError, match="not enrolled"):
        decide(None, CompleteStage(stage="bimtek_1"), ctx())


# ------------------------------------------------------------------ forms
def test_submit_form_for_the_stage_in_progress() -> None:
    state = state_of("bimtek_2:open")
    cmd = SubmitForm(pillar="branding", stage="bimtek_2", form="tagline", data={"t": "x"})
    events = decide(state, cmd, ctx())
    assert events == [FormSubmitted(pillar="branding", stage="bimtek_2", form="tagline",
                                    data={"t": "x"}, form_schema_version=1)]
    after = evolve(state, events[0])
    entry = after.form("bimtek_2", "branding", "tagline")
    assert entry is not None and entry.data == {"t": "x"} and entry.submissions == 1
    # resubmitting replaces the data and counts the submission
    again = evolve(after, decide(after, cmd.model_copy(update={"data": {"t": "y"}}), ctx())[0])
    entry = again.form("bimtek_2", "branding", "tagline")
    assert entry.data == {"t": "y"} and entry.submissions == 2
    assert after.form("bimtek_2", "branding", "tagline").data == {"t": "x"}  # old state intact


def test_submit_form_unknown_pillar_is_refused() -> None:
    state = state_of("bimtek_1:open")
    with pytest.raises(ValidationError) as exc:
        decide(state, SubmitForm(pillar="tourism", stage="bimtek_1", form="f", data={}), ctx())
    assert [e.field for e in exc.value.errors] == ["pillar"]
    assert "'tourism' is not a pillar of this plan" in str(exc.value)
    assert "governance" in exc.value.errors[0].fix


@pytest.mark.parametrize("key", ["bimtek_1:open", "bimtek_1:done", "bimtek_3:open"])
def test_submit_form_for_another_stage_is_refused(key: str) -> None:
    state = state_of(key)
    with pytest.raises(TransitionError, match=r"SubmitForm\(bimtek_2\) is allowed only while "
                                              "bimtek_2 is in progress"):
        decide(state, SubmitForm(pillar="governance", stage="bimtek_2", form="f", data={}),
               ctx())


# ------------------------------------------------------------------ quick wins
@pytest.mark.parametrize("key", ["bimtek_2:open", "bimtek_3:open"])
def test_propose_quick_win(key: str) -> None:
    state = state_of(key)
    cmd = ProposeQuickWin(quick_win_id="qw-2", pillar="living", name="Puskesmas online",
                          agency="Dinkes", description="antrian daring")
    events = decide(state, cmd, ctx())
    assert events == [QuickWinProposed(quick_win_id="qw-2", pillar="living",
                                       name="Puskesmas online", agency="Dinkes",
                                       description="antrian daring")]
    qw = evolve(state, events[0]).quick_wins["qw-2"]
    assert (qw.pillar, qw.completion_percent, qw.risks, qw.progress) == ("living", 0, (), ())


@pytest.mark.parametrize("key", ["bimtek_1:open", "bimtek_2:done", "bimtek_4:open"])
def test_propose_quick_win_outside_bimtek_2_3_is_refused(key: str) -> None:
    with pytest.raises(TransitionError, match="ProposeQuickWin is allowed only while "
                                              "bimtek_2 or bimtek_3 is in progress"):
        decide(state_of(key), ProposeQuickWin(quick_win_id="qw-9", pillar="living", name="n",
                                              agency="a"), ctx())


def test_propose_quick_win_duplicate_id_is_refused() -> None:
    state = state_of("bimtek_3:open")  # qw-1 was proposed in bimtek_2
    with pytest.raises(ValidationError) as exc:
        decide(state, ProposeQuickWin(quick_win_id="qw-1", pillar="living", name="n",
                                      agency="a"), ctx())
    assert [e.field for e in exc.value.errors] == ["quick_win_id"]
    assert "already proposed" in str(exc.value)


def test_propose_quick_win_unknown_pillar_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        decide(state_of("bimtek_2:open"), ProposeQuickWin(quick_win_id="qw-9", pillar="tourism",
                                                          name="n", agency="a"), ctx())
    assert [e.field for e in exc.value.errors] == ["pillar"]


@pytest.mark.parametrize("key", ["bimtek_3:open", "bimtek_4:open"])
def test_record_quick_win_risk(key: str) -> None:
    state = state_of(key)
    cmd = RecordQuickWinRisk(quick_win_id="qw-1", risk_id="r-1", description="anggaran",
                             likelihood=5, impact=3, handling="mitigate",
                             mitigation="APBD perubahan")
    events = decide(state, cmd, ctx())
    assert events == [QuickWinRiskRecorded(quick_win_id="qw-1", risk_id="r-1",
                                           description="anggaran", likelihood=5, impact=3,
                                           handling="mitigate", mitigation="APBD perubahan")]
    after = evolve(state, events[0])
    (risk,) = after.quick_wins["qw-1"].risks
    assert (risk.risk_id, risk.score, risk.mitigation) == ("r-1", 15, "APBD perubahan")
    # recording the same risk id again replaces it instead of adding a second one
    cmd2 = cmd.model_copy(update={"likelihood": 1, "impact": 2})
    after2 = evolve(after, decide(after, cmd2, ctx())[0])
    assert [(r.risk_id, r.score) for r in after2.quick_wins["qw-1"].risks] == [("r-1", 2)]


@pytest.mark.parametrize("key", ["bimtek_2:open", "bimtek_3:done", "review:open"])
def test_record_quick_win_risk_outside_bimtek_3_4_is_refused(key: str) -> None:
    with pytest.raises(TransitionError, match="RecordQuickWinRisk is allowed only while "
                                              "bimtek_3 or bimtek_4 is in progress"):
        decide(state_of(key), RecordQuickWinRisk(quick_win_id="qw-1", risk_id="r", likelihood=1,
                                                 impact=1, description="d", handling="h"), ctx())


def test_record_risk_for_unknown_quick_win_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        decide(state_of("bimtek_3:open"),
               RecordQuickWinRisk(quick_win_id="qw-404", risk_id="r", likelihood=1, impact=1,
                                  description="d", handling="h"), ctx())
    assert [e.field for e in exc.value.errors] == ["quick_win_id"]
    assert "no quick win 'qw-404'" in str(exc.value)


@pytest.mark.parametrize(("likelihood", "impact"), [(3, 5), (5, 3), (4, 4), (5, 5)])
@pytest.mark.parametrize("mitigation", ["", "   "])
def test_high_risk_without_mitigation_is_refused_at_construction(
        likelihood: int, impact: int, mitigation: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="needs a mitigation"):
        RecordQuickWinRisk(quick_win_id="qw-1", risk_id="r", description="d", handling="h",
                           likelihood=likelihood, impact=impact, mitigation=mitigation)


@pytest.mark.parametrize(("likelihood", "impact"), [(2, 7), (0, 3), (6, 1), (3, 0)])
def test_risk_scores_outside_1_to_5_are_refused(likelihood: int, impact: int) -> None:
    with pytest.raises(pydantic.ValidationError):
        RecordQuickWinRisk(quick_win_id="qw-1", risk_id="r", description="d", handling="h",
                           likelihood=likelihood, impact=impact, mitigation="m")


@pytest.mark.parametrize(("likelihood", "impact"), [(2, 5), (3, 4), (1, 5), (5, 2)])
def test_risk_below_high_needs_no_mitigation(likelihood: int, impact: int) -> None:
    cmd = RecordQuickWinRisk(quick_win_id="qw-1", risk_id="r", description="d", handling="h",
                             likelihood=likelihood, impact=impact)
    assert cmd.mitigation == ""
    assert cmd.likelihood * cmd.impact < 15


@pytest.mark.parametrize("key", ["bimtek_3:open", "bimtek_3:done", "bimtek_4:open",
                                 "bimtek_4:done", "review:open", "review:done", "approved"])
def test_report_progress_from_bimtek_3_on(key: str) -> None:
    state = state_of(key)
    events = decide(state, ReportQuickWinProgress(quick_win_id="qw-1", completion_percent=60,
                                                  evidence="foto"), ctx())
    assert events == [QuickWinProgressReported(quick_win_id="qw-1", completion_percent=60,
                                               reason="", evidence="foto")]
    qw = evolve(state, events[0]).quick_wins["qw-1"]
    assert qw.completion_percent == 60
    assert qw.progress == ((60, ""),)
    after = evolve(state, events[0])
    assert (after.stage, after.status) == (state.stage, state.status)  # no stage change


@pytest.mark.parametrize("key", ["none", "enrolled", "bimtek_2:open", "bimtek_2:done"])
def test_report_progress_before_bimtek_3_is_refused(key: str) -> None:
    with pytest.raises(TransitionError, match="allowed from bimtek_3 on"):
        decide(state_of(key), ReportQuickWinProgress(quick_win_id="qw-1",
                                                     completion_percent=10), ctx())


@pytest.mark.parametrize("percent", [-1, 101, 1000])
def test_progress_percent_must_be_0_to_100(percent: int) -> None:
    with pytest.raises(pydantic.ValidationError):
        ReportQuickWinProgress(quick_win_id="qw-1", completion_percent=percent)


@pytest.mark.parametrize("percent", [0, 100])
def test_progress_percent_bounds_are_accepted(percent: int) -> None:
    assert ReportQuickWinProgress(quick_win_id="qw-1",
                                  completion_percent=percent).completion_percent == percent


def test_report_progress_unknown_quick_win_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        decide(state_of("bimtek_3:open"), ReportQuickWinProgress(quick_win_id="qw-404",
                                                                 completion_percent=10), ctx())
    assert [e.field for e in exc.value.errors] == ["quick_win_id"]


@pytest.mark.parametrize("reason", ["", "  \t"])
def test_progress_going_back_without_reason_is_refused(reason: str) -> None:
    state = fold(history("bimtek_3:open") + [
        QuickWinProgressReported(quick_win_id="qw-1", completion_percent=70)])
    with pytest.raises(ValidationError) as exc:
        decide(state, ReportQuickWinProgress(quick_win_id="qw-1", completion_percent=50,
                                             reason=reason), ctx())
    assert [e.field for e in exc.value.errors] == ["reason"]
    assert "goes back from 70% to 50%" in str(exc.value)


def test_progress_going_back_with_reason_is_accepted() -> None:
    state = fold(history("approved") + [
        QuickWinProgressReported(quick_win_id="qw-1", completion_percent=70)])
    cmd = ReportQuickWinProgress(quick_win_id="qw-1", completion_percent=50,
                                 reason="kontrak vendor dibatalkan")
    events = decide(state, cmd, ctx())
    assert events == [QuickWinProgressReported(quick_win_id="qw-1", completion_percent=50,
                                               reason="kontrak vendor dibatalkan")]
    qw = evolve(state, events[0]).quick_wins["qw-1"]
    assert qw.completion_percent == 50
    assert qw.progress == ((70, ""), (50, "kontrak vendor dibatalkan"))


def test_progress_staying_equal_needs_no_reason() -> None:
    state = fold(history("bimtek_4:open") + [
        QuickWinProgressReported(quick_win_id="qw-1", completion_percent=70)])
    events = decide(state, ReportQuickWinProgress(quick_win_id="qw-1", completion_percent=70),
                    ctx())
    assert [type(e) for e in events] == [QuickWinProgressReported]


# ------------------------------------------------------------------ review and approval
def test_submit_for_review_needs_bimtek_4_completed() -> None:
    state = state_of("bimtek_4:done")
    events = decide(state, SubmitForReview(), ctx())
    assert events == [SubmittedForReview(round=1)]
    after = evolve(state, events[0])
    assert (after.stage, after.status, after.review_round) == ("review", "open", 1)
    with pytest.raises(TransitionError, match="SubmitForReview needs bimtek_4 completed") as exc:
        decide(state_of("bimtek_4:open"), SubmitForReview(), ctx())
    assert exc.value.stage == "bimtek_4 (in progress)"


def test_record_review_finding_takes_round_and_reviewer() -> None:
    state = fold(history("bimtek_4:done") + [SubmittedForReview(round=1)])
    events = decide(state, RecordReviewFinding(finding_id="f-1", text="  SOP kurang  ",
                                               pillar="governance", severity="minor"),
                    ctx(REVIEWER))
    assert events == [ReviewFindingRecorded(finding_id="f-1", round=1, pillar="governance",
                                            severity="minor", text="SOP kurang",
                                            reviewer="ta-reviewer")]
    (finding,) = evolve(state, events[0]).findings
    assert (finding.round, finding.reviewer, finding.severity) == (1, "ta-reviewer", "minor")


def test_record_review_finding_without_pillar_is_allowed() -> None:
    events = decide(state_of("review:open"), RecordReviewFinding(finding_id="f-9", text="umum"),
                    ctx(REVIEWER))
    assert events[0].pillar is None and events[0].severity == "major"


def test_record_review_finding_unknown_pillar_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        decide(state_of("review:open"), RecordReviewFinding(finding_id="f-9", text="t",
                                                            pillar="tourism"), ctx(REVIEWER))
    assert [e.field for e in exc.value.errors] == ["pillar"]


def test_record_review_finding_duplicate_id_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        decide(state_of("review:open"), RecordReviewFinding(finding_id="f-1", text="t"),
               ctx(REVIEWER))
    assert [e.field for e in exc.value.errors] == ["finding_id"]


def test_pass_review_marks_review_done() -> None:
    state = state_of("review:open")
    events = decide(state, PassReview(), ctx(REVIEWER))
    assert events == [ReviewPassed(round=1, reviewer="ta-reviewer")]
    after = evolve(state, events[0])
    assert (after.stage, after.status) == ("review", "done")
    assert allowed_commands(after) == ["ApproveByRegent", "RefuseApproval",
                                       "ReportQuickWinProgress", "RecordBimtekSession"]


def test_return_for_revision_reopens_bimtek_4() -> None:
    state = state_of("review:open")
    events = decide(state, ReturnForRevision(reason="lengkapi SOP"), ctx(REVIEWER))
    assert events == [ReturnedForRevision(round=1, reason="lengkapi SOP",
                                          reviewer="ta-reviewer")]
    after = evolve(state, events[0])
    assert (after.stage, after.status, after.review_round) == ("bimtek_4", "open", 1)
    assert "CompleteStage(bimtek_4)" in allowed_commands(after)


def test_return_for_revision_needs_a_finding_in_this_round() -> None:
    state = fold(history("bimtek_4:done") + [SubmittedForReview(round=1)])
    with pytest.raises(TransitionError, match="needs at least one finding") as exc:
        decide(state, ReturnForRevision(reason="x"), ctx(REVIEWER))
    assert exc.value.stage == "review (in progress)"
    # a finding of an earlier round does not count either
    round2 = fold(history("review:open") + [
        ReturnedForRevision(round=1, reason="x", reviewer=REVIEWER.id),
        StageCompleted(stage="bimtek_4"), SubmittedForReview(round=2)])
    assert [f.round for f in round2.findings] == [1]
    with pytest.raises(TransitionError, match="needs at least one finding"):
        decide(round2, ReturnForRevision(reason="x"), ctx(REVIEWER))


def test_approve_by_regent_after_review_passed() -> None:
    state = state_of("review:done")
    cmd = ApproveByRegent(regulation_number="Perbup 12/2023",
                          regulation_date=date(2023, 11, 30), quick_wins_in_rpjmd=True)
    events = decide(state, cmd, ctx(REGENT))
    assert events == [ApprovedByRegent(regent="bupati-ponorogo", head_title="Bupati",
                                       regulation_number="Perbup 12/2023",
                                       regulation_date=date(2023, 11, 30),
                                       quick_wins_in_rpjmd=True)]
    after = evolve(state, events[0])
    assert (after.stage, after.status) == ("approved", "done")
    assert after.approval.regulation_date == "2023-11-30"
    assert after.approval.regent == "bupati-ponorogo"
    assert allowed_commands(after) == ["ReportQuickWinProgress", "SubmitEvaluation",
                                       "ScoreEvaluation", "RecordBimtekSession"]


def test_refuse_approval_returns_to_open_review() -> None:
    state = state_of("review:done")
    events = decide(state, RefuseApproval(reason="belum selaras RPJMD"), ctx(REGENT))
    assert events == [ApprovalRefused(regent="bupati-ponorogo", reason="belum selaras RPJMD")]
    after = evolve(state, events[0])
    assert (after.stage, after.status) == ("review", "open")
    assert after.refusals == ("belum selaras RPJMD",)
    assert after.approval is None


@pytest.mark.parametrize("command", [ApproveByRegent(), RefuseApproval(reason="r")],
                         ids=["approve", "refuse"])
@pytest.mark.parametrize("key", ["bimtek_4:done", "review:open", "approved"])
def test_approval_needs_a_passed_review(key: str, command) -> None:
    with pytest.raises(TransitionError, match="needs a plan that passed review"):
        decide(state_of(key), command, ctx(REGENT))


@pytest.mark.parametrize("command", [PassReview(), RecordReviewFinding(finding_id="f-7", text="t"),
                                     ReturnForRevision(reason="r")],
                         ids=["pass", "finding", "return"])
@pytest.mark.parametrize("key", ["bimtek_4:done", "review:done", "approved"])
def test_review_commands_need_review_in_progress(key: str, command) -> None:
    with pytest.raises(TransitionError, match="allowed only while review is in progress"):
        decide(state_of(key), command, ctx(REVIEWER))


# ------------------------------------------------------------------ whole lifecycle
class Plan:
    """Tiny driver: decide, check decide left the state alone, evolve, keep the events."""

    def __init__(self) -> None:
        self.state: PlanState | None = None
        self.events: list = []

    def do(self, command, actor: Actor = OPERATOR, gate=None) -> list:
        before = None if self.state is None else self.state.to_dict()
        events = decide(self.state, command, ctx(actor, gate))
        assert (None if self.state is None else self.state.to_dict()) == before
        for ev in events:
            self.state = evolve(self.state, ev)
        self.events += events
        return events


def test_happy_path_with_one_revision() -> None:
    p = Plan()
    p.do(EnrolRegion(programme_id=PROGRAMME, region_code="35.02"))
    for stage in BIMTEK_STAGES:
        p.do(StartStage(stage=stage))
        p.do(SubmitForm(pillar="governance", stage=stage, form="f", data={"stage": stage}))
        if stage == "bimtek_2":
            p.do(ProposeQuickWin(quick_win_id="qw-1", pillar="economy", name="Pasar",
                                 agency="Disperindag"))
        if stage == "bimtek_3":
            p.do(RecordQuickWinRisk(quick_win_id="qw-1", risk_id="r-1", description="d",
                                    likelihood=4, impact=4, handling="h", mitigation="m"))
            p.do(ReportQuickWinProgress(quick_win_id="qw-1", completion_percent=30))
        p.do(CompleteStage(stage=stage))
        assert (p.state.stage, p.state.status) == (stage, "done")

    assert p.do(SubmitForReview()) == [SubmittedForReview(round=1)]
    assert p.state.review_round == 1
    p.do(RecordReviewFinding(finding_id="f-1", text="SOP", pillar="governance"), REVIEWER)
    p.do(ReturnForRevision(reason="lengkapi SOP"), REVIEWER)
    assert (p.state.stage, p.state.status) == ("bimtek_4", "open")
    p.do(SubmitForm(pillar="governance", stage="bimtek_4", form="f", data={"rev": 2}))
    p.do(CompleteStage(stage="bimtek_4"))

    assert p.do(SubmitForReview()) == [SubmittedForReview(round=2)]
    assert (p.state.stage, p.state.status, p.state.review_round) == ("review", "open", 2)
    p.do(RecordReviewFinding(finding_id="f-2", text="typo", severity="minor"), REVIEWER)
    assert [(f.finding_id, f.round) for f in p.state.findings] == [("f-1", 1), ("f-2", 2)]
    assert p.do(PassReview(), REVIEWER) == [ReviewPassed(round=2, reviewer=REVIEWER.id)]
    p.do(RefuseApproval(reason="tunggu APBD"), REGENT)
    assert (p.state.stage, p.state.status, p.state.review_round) == ("review", "open", 2)
    p.do(PassReview(), REVIEWER)
    p.do(ApproveByRegent(regulation_number="Perbup 1/2024"), REGENT)

    s = p.state
    assert (s.stage, s.status, s.review_round) == ("approved", "done", 2)
    assert [(f.finding_id, f.round) for f in s.findings] == [("f-1", 1), ("f-2", 2)]
    assert s.refusals == ("tunggu APBD",)
    assert s.approval.regulation_number == "Perbup 1/2024"
    assert s.form("bimtek_4", "governance", "f").submissions == 2
    assert s.form("bimtek_4", "governance", "f").data == {"rev": 2}
    assert s.quick_wins["qw-1"].risks[0].score == 16

    # approved is terminal except for progress reports
    p.do(ReportQuickWinProgress(quick_win_id="qw-1", completion_percent=100))
    assert p.state.quick_wins["qw-1"].progress == ((30, ""), (100, ""))
    for cmd in (SubmitForReview(), PassReview(), StartStage(stage="bimtek_1"),
                ApproveByRegent()):
        with pytest.raises(TransitionError):
            decide(p.state, cmd, ctx(REGENT))

    # replaying the recorded events gives the same state, twice over
    assert fold(p.events).to_dict() == p.state.to_dict()
    assert fold(list(p.events)).to_dict() == fold(list(p.events)).to_dict()


def test_evolve_is_deterministic_and_leaves_old_state_alone() -> None:
    events = history("approved") + [
        QuickWinRiskRecorded(quick_win_id="qw-1", risk_id="r", description="d", likelihood=1,
                             impact=1, handling="h"),
        QuickWinProgressReported(quick_win_id="qw-1", completion_percent=20),
        FormSubmitted(pillar="governance", stage="bimtek_1", form="f", data={"x": [1, 2]})]
    a, b = fold(events), fold(events)
    assert a is not b
    assert a.to_dict() == b.to_dict()
    prefix = fold(events[:-2])
    snapshot = prefix.to_dict()
    evolve(evolve(prefix, events[-2]), events[-1])
    assert prefix.to_dict() == snapshot


@pytest.mark.parametrize("key", ["review:open", "review:done"])
def test_allowed_commands_lists_progress_reports_during_review(key: str) -> None:
    state = state_of(key)
    decide(state, ReportQuickWinProgress(quick_win_id="qw-1", completion_percent=5), ctx())
    assert "ReportQuickWinProgress" in allowed_commands(state)


# ------------------------------------------------------------------ property
COMMAND_POOL = [
    (EnrolRegion(programme_id=PROGRAMME, region_code="35.02"), OPERATOR, None),
    *[(StartStage(stage=s), OPERATOR, None) for s in BIMTEK_STAGES],
    *[(CompleteStage(stage=s), OPERATOR, None) for s in BIMTEK_STAGES],
    *[(CompleteStage(stage=s), OPERATOR, {"governance": ["form"]}) for s in BIMTEK_STAGES[:2]],
    *[(SubmitForm(pillar="governance", stage=s, form="f", data={}), OPERATOR, None)
      for s in BIMTEK_STAGES],
    (SubmitForm(pillar="tourism", stage="bimtek_1", form="f", data={}), OPERATOR, None),
    (ProposeQuickWin(quick_win_id="qw-1", pillar="economy", name="n", agency="a"), OPERATOR,
     None),
    (RecordQuickWinRisk(quick_win_id="qw-1", risk_id="r", description="d", likelihood=3,
                        impact=3, handling="h"), OPERATOR, None),
    (ReportQuickWinProgress(quick_win_id="qw-1", completion_percent=80), OPERATOR, None),
    (ReportQuickWinProgress(quick_win_id="qw-1", completion_percent=20), OPERATOR, None),
    (SubmitForReview(), OPERATOR, None),
    (RecordReviewFinding(finding_id="f-1", text="t"), REVIEWER, None),
    (RecordReviewFinding(finding_id="f-2", text="t"), REVIEWER, None),
    (PassReview(), REVIEWER, None),
    (ReturnForRevision(reason="r"), REVIEWER, None),
    (ApproveByRegent(), REGENT, None),
    (RefuseApproval(reason="r"), REGENT, None),
]


def _label(command) -> str:
    name = type(command).__name__
    stage = getattr(command, "stage", None)
    return f"{name}({stage})" if stage else name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_command_sequences_keep_the_plan_consistent(data: st.DataObject) -> None:
    """Random walks: each step is either any command of the pool or (to get deep into the
    lifecycle) one the current stage lists as allowed. decide either refuses with one of our
    errors or returns events evolve accepts, and the state stays well-formed."""
    state: PlanState | None = None
    events: list = []
    last_round = 0
    for _ in range(data.draw(st.integers(0, 60), label="steps")):
        allowed = allowed_commands(state)
        guided = [c for c in COMMAND_POOL if _label(c[0]) in allowed]
        pool = guided if guided and data.draw(st.booleans(), label="guided") else COMMAND_POOL
        command, actor, gate = data.draw(st.sampled_from(pool), label="command")
        before = None if state is None else state.to_dict()
        try:
            new = decide(state, command, ctx(actor, gate))
        except TransitionError as err:
            assert err.allowed == allowed
            new = []
        except ValidationError as err:
            assert err.errors
            new = []
        else:
            assert len(new) == 1
        assert (None if state is None else state.to_dict()) == before
        if state is not None and state.stage == "approved":
            assert all(isinstance(e, QuickWinProgressReported) for e in new)
        for ev in new:
            state = evolve(state, ev)
        events += new
        if state is not None:
            assert state.stage in STAGES
            assert state.status in ("open", "done")
            assert state.review_round >= last_round  # rounds never go back
            last_round = state.review_round
            assert all(0 <= q.completion_percent <= 100 for q in state.quick_wins.values())
            assert all(f.round <= state.review_round for f in state.findings)
    if state is not None:
        assert fold(events).to_dict() == state.to_dict()
