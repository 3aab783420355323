"""Folding events into a plan's state: over the stored JSON form, one container copy per
fold, never touching the state it started from."""

from __future__ import annotations

from datetime import date

import pytest

from engine.chain import canonical_json
from engine.domain import plan as P
from engine.domain.events import encode, event_data
from engine.errors import TransitionError

ENROLLED = P.PlanEnrolled(programme_id="m100", region_code="35.02", region_name="Ponorogo",
                          region_kind="kabupaten", head_title="Bupati",
                          pillars=("governance", "economy"), programme_year=2018)


def history() -> list[P.Event]:
    return [
        ENROLLED,
        P.StageStarted(stage="bimtek_1"),
        P.FormSubmitted(pillar="governance", stage="bimtek_1", form="swot",
                        data={"strengths": ["a"]}),
        P.QuickWinProposed(quick_win_id="qw-1", pillar="economy", name="Pasar daring",
                           agency="Disperindag"),
        P.QuickWinProgressReported(quick_win_id="qw-1", completion_percent=20, reason="r1"),
        P.QuickWinRiskRecorded(quick_win_id="qw-1", risk_id="R1", description="d",
                               likelihood=4, impact=4, handling="mitigate", mitigation="m"),
        P.FormSubmitted(pillar="governance", stage="bimtek_1", form="swot",
                        data={"strengths": ["a", "b"]}),
        P.QuickWinPresented(quick_win_id="qw-1", agency="Disperindag", presenter="Kadis",
                            presented_on=date(2018, 5, 2)),
        P.QuickWinAdviceRecorded(quick_win_id="qw-1", advice_id="A1", advisor="expert",
                                 text="t", advised_on=date(2018, 5, 3)),
        P.BimtekSessionRecorded(stage="bimtek_1", held_on=date(2018, 5, 1), venue="Aula",
                                agencies=("Diskominfo",),
                                institutions=(P.Institution(name="Polres", kind="police"),),
                                working_groups={"governance": ("Diskominfo",)}),
        P.QuickWinProgressReported(quick_win_id="qw-1", completion_percent=60, reason="r2"),
        P.StageCompleted(stage="bimtek_1"),
    ]


def stored_form(events: list[P.Event]) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    """The events as a replay reads them: their stored bytes, decoded."""
    return [(e.event_type, event_data(e.event_type, e.schema_version, e.payload))
            for e in map(encode, events)]


def test_one_fold_equals_event_by_event_and_the_stored_form() -> None:
    events = history()
    step = None
    for ev in events:
        step = P.evolve(step, ev)
    assert P.fold(events) == step
    assert P.fold_data(stored_form(events)) == step
    qw = step.quick_wins["qw-1"]
    assert qw.completion_percent == 60 and qw.progress == ((20, "r1"), (60, "r2"))
    assert qw.risks[0].score == 16 and qw.presentations == (("Disperindag", "Kadis",
                                                              "2018-05-02"),)
    assert step.forms["bimtek_1/governance/swot"].submissions == 2
    assert step.sessions[0].institutions == (("Polres", "police"),)


def test_the_state_folded_from_is_never_changed() -> None:
    events = history()
    before = P.fold(events[:6])
    snapshot = before.to_dict()
    after = P.fold_data(stored_form(events[6:]), before, version=12)
    assert before.to_dict() == snapshot
    assert after.version == 12 and before.version == 0
    assert after.to_dict() == {**P.fold(events).to_dict(), "version": 12}


def test_fields_added_since_an_event_was_stored_get_their_defaults() -> None:
    """Payloads written before a field with a default existed fold as the event would
    validate: the default fills in."""
    old = [("PlanEnrolled", encode(ENROLLED).payload),
           ("StageStarted", canonical_json({"stage": "bimtek_1"})),  # no "revision"
           ("QuickWinProposed", canonical_json({"quick_win_id": "qw-9", "pillar": "economy",
                                                "name": "n", "agency": "a"})),  # no description
           ("FormSubmitted", canonical_json({"pillar": "economy", "stage": "bimtek_1",
                                             "form": "swot", "data": {}}))]  # no schema ver.
    state = P.fold_data((t, event_data(t, 1, p)) for t, p in old)
    assert state is not None
    assert state.quick_wins["qw-9"].description == ""
    assert state.forms["bimtek_1/economy/swot"].form_schema_version == 1
    assert event_data("StageStarted", 1, b'{"stage":"bimtek_2"}') == {"stage": "bimtek_2",
                                                                      "revision": False}


def test_defaults_are_not_shared_between_events() -> None:
    first = event_data("BimtekSessionRecorded", 1, canonical_json(
        {"stage": "bimtek_1", "held_on": "2018-05-01", "venue": "v", "agencies": []}))
    first["working_groups"]["governance"] = ["x"]
    second = event_data("BimtekSessionRecorded", 1, canonical_json(
        {"stage": "bimtek_1", "held_on": "2018-05-01", "venue": "v", "agencies": []}))
    assert second["working_groups"] == {} and second["institutions"] == []


def test_refusals_name_the_event() -> None:
    with pytest.raises(TransitionError, match="StageStarted before the plan was enrolled"):
        P.fold_data([("StageStarted", {"stage": "bimtek_1", "revision": False})])
    with pytest.raises(TransitionError, match="does not handle StageScheduled"):
        P.fold_data(stored_form([ENROLLED]) + [("StageScheduled", {})])
    with pytest.raises(TransitionError, match="quick win 'qw-x' was never proposed"):
        P.fold([ENROLLED, P.QuickWinProgressReported(quick_win_id="qw-x",
                                                     completion_percent=1)])
    with pytest.raises(TransitionError, match="evaluation 2020 was scored before"):
        P.fold([ENROLLED, P.EvaluationScored(year=2020, scores={}, findings=(),
                                             reviewer="r")])


def test_a_second_enrolment_starts_over() -> None:
    state = P.fold(history() + [ENROLLED])
    assert state is not None and state.stage == "enrolled" and not state.quick_wins
