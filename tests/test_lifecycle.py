"""A plan's whole life through the real engine and store, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from engine import operations as ops
from engine.errors import TransitionError, ValidationError
from tests.helpers import advance_to


def test_plan_goes_from_enrolment_to_approval_with_one_revision(engine, operator) -> None:  # type: ignore[no-untyped-def]
    advance_to(engine, operator, "m100-2023", "35.02", "bimtek_4")
    assert ops.close_stage(engine, "m100-2023", "35.02", "bimtek_4").completed
    ops.review(engine, "m100-2023", "35.02", return_first=True)
    state = engine.plan("m100-2023", "35.02")
    assert (state.stage, state.status, state.review_round) == ("review", "done", 2)
    assert [f.round for f in state.findings] == [1]
    ops.approve(engine, "m100-2023", "35.02", 2023)
    state = engine.plan("m100-2023", "35.02")
    assert state.stage == "approved"
    assert state.approval is not None and state.approval.regent == "kepala-daerah-35.02"
    assert state.approval.head_title == "Bupati"  # Ponorogo is a kabupaten
    types = [e.event_type for e in engine.history("m100-2023", "35.02")]
    assert types.count("ReturnedForRevision") == 1 and types[-1] == "ApprovedByRegent"


def test_rerunning_every_operation_writes_nothing_twice(engine, operator) -> None:  # type: ignore[no-untyped-def]
    advance_to(engine, operator, "m100-2023", "33.07", "bimtek_2")
    before = engine.store.last_position()
    # the same operations again, as a retried task would run them
    ops.enrol(engine, "m100-2023", "33.07")
    ops.open_stage(engine, "m100-2023", "33.07", "bimtek_2")
    ops.fill_stage(engine, "m100-2023", "33.07", "bimtek_1", seed=1)
    assert engine.store.last_position() == before


def test_stage_with_a_missing_form_stays_open_and_says_what_is_missing(engine, operator) -> None:  # type: ignore[no-untyped-def]
    engine.create_programme(operator, "m100-2023", "Menuju 100 Smart City", 2023, ["35.76"])
    ops.enrol(engine, "m100-2023", "35.76")
    ops.open_stage(engine, "m100-2023", "35.76", "bimtek_1")
    ops.fill_stage(engine, "m100-2023", "35.76", "bimtek_1",
                   skip=frozenset({("environment", "waste_baseline")}))
    outcome = ops.close_stage(engine, "m100-2023", "35.76", "bimtek_1")
    assert not outcome.completed
    assert outcome.missing == {"environment": ["form waste_baseline"]}
    before = engine.store.last_position()
    with pytest.raises(TransitionError, match="environment: form waste_baseline"):
        engine.execute(operator, "m100-2023", "35.76", "CompleteStage", {"stage": "bimtek_1"})
    assert engine.store.last_position() == before


def test_invalid_form_is_refused_with_the_field_and_writes_nothing(engine, operator) -> None:  # type: ignore[no-untyped-def]
    advance_to(engine, operator, "m100-2023", "13.73", "bimtek_1")
    before = engine.store.last_position()
    bad = {"year": 2022, "generated_tonnes_per_day": "120.5", "reduced_percent": 60,
           "handled_percent": 70, "landfill": "TPA Sawahlunto"}
    with pytest.raises(ValidationError) as info:
        engine.execute(ops.officer_of("13.73"), "m100-2023", "13.73", "SubmitForm",
                       {"pillar": "environment", "stage": "bimtek_1", "form": "waste_baseline",
                        "data": bad})
    [error] = info.value.errors
    assert (error.pillar, error.form, error.field) == ("environment", "waste_baseline",
                                                      "handled_percent")
    assert error.fix
    assert engine.store.last_position() == before


def test_unknown_region_and_unknown_programme_are_clear(engine, operator) -> None:  # type: ignore[no-untyped-def]
    from engine.errors import NotFound

    with pytest.raises(NotFound, match="99.99"):
        engine.create_programme(operator, "m100-2023", "Menuju 100", 2023, ["99.99"])
    with pytest.raises(ValidationError, match="region_codes"):
        engine.create_programme(operator, "m100-2023", "Menuju 100", 2023, ["3502"])
    with pytest.raises(NotFound, match="no programme"):
        ops.enrol(engine, "nope", "35.02")
    assert engine.store.last_position() == 0


def test_closing_a_stage_that_is_not_a_bimtek_is_reported_not_raised(engine, operator) -> None:  # type: ignore[no-untyped-def]
    engine.create_programme(operator, "m100-2023", "Menuju 100 Smart City", 2023, ["35.76"])
    ops.enrol(engine, "m100-2023", "35.76")
    outcome = ops.close_stage(engine, "m100-2023", "35.76", "review")
    assert not outcome.completed and "not a bimtek stage" in outcome.missing["plan"][0]
