"""Old stored event versions are upcast on read; the stored bytes never change."""

from __future__ import annotations

import pytest

from engine.chain import canonical_json
from engine.domain.events import decode, upcast
from engine.domain.plan import QuickWinProgressReported, plan_stream
from engine.errors import SmartCityError
from engine.records import EventMeta, NewEvent, StoredEvent


def test_upcaster_turns_v1_payload_into_v2() -> None:
    assert upcast("QuickWinProgressReported", 1, {"quick_win_id": "Q1", "percent": 40}) == {
        "quick_win_id": "Q1", "completion_percent": 40, "reason": "", "evidence": ""}


def test_decode_of_a_stored_v1_event() -> None:
    stored = StoredEvent(1, "plan:x:35.02", 9, "QuickWinProgressReported", 1,
                         b'{"percent":70,"quick_win_id":"BRD-QW1"}', "a", "operator",
                         "2023-01-01T00:00:00.000000Z", "c", "c", "", "0" * 64)
    ev = decode(stored)
    assert isinstance(ev, QuickWinProgressReported)
    assert ev.completion_percent == 70 and ev.reason == ""


def test_newer_schema_than_engine_is_refused_clearly() -> None:
    with pytest.raises(SmartCityError, match="newer than this engine knows"):
        upcast("QuickWinProgressReported", 3, {})


def test_plan_replays_through_a_stored_v1_event(engine, operator) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import advance_to

    advance_to(engine, operator, "m100-2023", "13.73", "bimtek_3")
    state = engine.plan("m100-2023", "13.73")
    qw = next(iter(state.quick_wins))
    stream = plan_stream("m100-2023", "13.73")
    # An event as an older engine wrote it: schema version 1, field "percent".
    old = NewEvent("QuickWinProgressReported", 1, canonical_json({"quick_win_id": qw,
                                                                 "percent": 55}))
    engine.store.append(stream, state.version, [old],
                        EventMeta("old-engine", "regional_officer", "legacy-1", "legacy-1"))
    stored = engine.store.read_stream(stream)[-1]
    assert stored.schema_version == 1 and b'"percent":55' in stored.payload
    assert engine.plan("m100-2023", "13.73").quick_wins[qw].completion_percent == 55
