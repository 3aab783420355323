"""Any input to any command: a clear, field-level refusal and nothing written, or a
recorded command; never an unhandled exception (Hypothesis, seeded)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import operations as ops
from engine.application import Engine
from engine.domain.plan import PLAN_COMMANDS
from engine.errors import PermissionDenied, SmartCityError, ValidationError
from engine.roles import Actor, Role
from tests.helpers import advance_to

PROGRAMME = "m100-2023"
REGION = "35.76"  # Kota Mojokerto

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                      st.floats(allow_nan=True), st.text(max_size=30),
                      st.sampled_from(["bimtek_3", "governance", "economy", "quick_win_profiles",
                                       "ECO-QW1", "", "  ", "2024-01-01", "-5", "101"]))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


def command_data(name: str) -> st.SearchStrategy[dict[str, Any]]:
    fields = list(PLAN_COMMANDS[name].model_fields) if name in PLAN_COMMANDS else []
    keys = st.sampled_from(fields + ["unexpected", "stage", "data"]) if fields else st.text(
        max_size=10)
    return st.dictionaries(keys, json_value, max_size=len(fields) + 2)


command = st.one_of(st.sampled_from(sorted(PLAN_COMMANDS)), st.text(max_size=20)).flatmap(
    lambda name: st.tuples(st.just(name), command_data(name)))
actors = st.sampled_from([
    Actor(id="op", role=Role.OPERATOR),
    Actor(id="officer", role=Role.REGIONAL_OFFICER, region=REGION),
    Actor(id="officer-elsewhere", role=Role.REGIONAL_OFFICER, region="35.02"),
    Actor(id="ta", role=Role.REVIEWER),
    Actor(id="walikota", role=Role.REGENT, region=REGION),
    Actor(id="bpk", role=Role.AUDITOR),
])


@pytest.fixture
def open_plan(engine: Engine, operator: Actor) -> Engine:
    advance_to(engine, operator, PROGRAMME, REGION, "bimtek_3")
    return engine


def test_any_command_with_any_data_is_refused_cleanly_or_recorded(open_plan: Engine) -> None:
    engine = open_plan
    outcomes: dict[str, int] = {}

    @settings(max_examples=300, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(actor=actors, cmd=command)
    def attempt(actor: Actor, cmd: tuple[str, dict[str, Any]]) -> None:
        name, data = cmd
        before = engine.store.last_position()
        try:
            stored = engine.execute(actor, PROGRAMME, REGION, name, data)
        except ValidationError as exc:
            assert exc.errors and all(e.field for e in exc.errors), exc.errors
            assert engine.store.last_position() == before
            outcomes["invalid"] = outcomes.get("invalid", 0) + 1
        except PermissionDenied:
            assert engine.store.last_position() == before
            outcomes["denied"] = outcomes.get("denied", 0) + 1
        except SmartCityError:  # transition refused, not found, ...
            assert engine.store.last_position() == before
            outcomes["refused"] = outcomes.get("refused", 0) + 1
        else:
            assert stored and engine.store.last_position() == before + len(stored)
            outcomes["recorded"] = outcomes.get("recorded", 0) + 1

    attempt()
    assert outcomes.get("invalid", 0) > 50 and outcomes.get("denied", 0) > 10
    assert engine.plan(PROGRAMME, REGION).stage == "bimtek_3"


def test_commands_on_unknown_plans_and_programmes_write_nothing(engine: Engine,
                                                                operator: Actor) -> None:
    from engine.errors import NotFound

    for programme, region in (("nope", REGION), (PROGRAMME, "99.99"), (PROGRAMME, "3576")):
        with pytest.raises((NotFound, ValidationError)):
            engine.execute(operator, programme, region, "StartStage", {"stage": "bimtek_1"})
    with pytest.raises(ValidationError, match="command"):
        engine.execute(operator, PROGRAMME, REGION, "DropTable", {})
    assert engine.store.last_position() == 0
    ops  # noqa: B018 - keeps the operations import for helpers
