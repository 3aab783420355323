"""The programme calendar with a fixed clock: scheduling, rescheduling, overdue regions,
reminders sent once per deadline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from engine import operations as ops
from engine.application import Engine
from engine.calendar import done, outbox, overdue, send_reminders
from engine.cli import app
from engine.errors import PermissionDenied, ValidationError
from engine.hookspecs import hookimpl
from engine.pillars import BUILTIN_ORDER, Reminder, load_registry
from engine.roles import Actor, Role

PROGRAMME = "m100-2023"
OP = Actor(id="op-kominfo", role=Role.OPERATOR)
SCHEDULE = [
    {"stage": "bimtek_1", "session_start": "2023-03-06", "session_end": "2023-03-07",
     "deadline": "2023-03-31", "venue": "Hotel Borobudur, Jakarta"},
    {"stage": "bimtek_2", "session_start": "2023-04-10", "session_end": "2023-04-11",
     "deadline": "2023-04-28"},
    {"stage": "bimtek_3", "session_start": "2023-05-15", "session_end": "2023-05-16",
     "deadline": "2023-06-02"},
    {"stage": "bimtek_4", "session_start": "2023-06-12", "session_end": "2023-06-13",
     "deadline": "2023-06-30"},
    {"stage": "review", "deadline": "2023-07-21"},
    {"stage": "approval", "deadline": "2023-08-31"},
]


class Clock:
    def __init__(self, day: date) -> None:
        self.day = day

    def __call__(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day, 9, 0, tzinfo=UTC)


class Outbox:
    """A notify plugin that records what it was handed; can fail on purpose."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[str] = []
        self.fail = fail or set()

    @hookimpl
    def notify(self, reminder: Reminder) -> bool:
        self.calls.append(reminder.reminder_id)
        if reminder.reminder_id in self.fail:
            self.fail.discard(reminder.reminder_id)
            raise ConnectionError("SMTP server did not answer")
        return True


@pytest.fixture
def clock() -> Clock:
    return Clock(date(2023, 3, 1))


@pytest.fixture
def cal(db_url: str, clock: Clock) -> Iterator[Engine]:
    # A registry of its own: the tests register notify plugins into it.
    eng = Engine(db_url, registry=load_registry(only=BUILTIN_ORDER), clock=clock)
    eng.create_programme(OP, PROGRAMME, "Gerakan Menuju 100 Smart City 2023", 2023,
                         ["35.02", "35.76", "33.07"])
    for entry in SCHEDULE:
        eng.schedule_stage(OP, PROGRAMME, entry)
    yield eng
    eng.close()


def test_schedule_is_recorded_and_moves_say_who_and_why(cal: Engine) -> None:
    state = cal.programme(PROGRAMME)
    assert [s["stage"] for s in state.to_dict()["schedule"]] == [e["stage"] for e in SCHEDULE]
    assert state.schedule["bimtek_1"].venue == "Hotel Borobudur, Jakarta"
    before = cal.store.last_position()
    with pytest.raises(ValidationError) as info:
        cal.schedule_stage(OP, PROGRAMME, {**SCHEDULE[1], "deadline": "2023-05-05"})
    assert info.value.errors[0].field == "reason"
    assert cal.store.last_position() == before
    mover = Actor(id="dir-aptika", role=Role.OPERATOR)
    [ev] = cal.schedule_stage(mover, PROGRAMME, {**SCHEDULE[1], "deadline": "2023-05-05",
                                                 "reason": "Libur Idul Fitri"})
    assert (ev.event_type, ev.actor_id) == ("StageScheduled", "dir-aptika")
    assert json.loads(ev.payload)["rescheduled"] is True
    state = cal.programme(PROGRAMME)
    assert state.schedule["bimtek_2"].deadline == date(2023, 5, 5)
    assert state.schedule["bimtek_2"].changes == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"stage": "bimtek_2", "deadline": "2023-03-20"}, "deadline"),  # before bimtek_1's
    ({"stage": "bimtek_1", "deadline": "2023-03-05"}, "deadline"),  # before its session ends
    ({"stage": "bimtek_1", "session_end": "2023-03-01"}, "session_end"),
    ({"stage": "bimtek_1", "session_end": "2023-03-12"}, "session_end"),  # a week-long session
    ({"stage": "bimtek_1", "session_start": None}, "session_start"),
    ({"stage": "review", "session_start": "2023-07-03"}, "session_start"),
    ({"stage": "approval", "deadline": "2026-01-31"}, "deadline"),  # outside the year
    ({"stage": "bimtek_5"}, "stage"),
    ({"stage": "bimtek_1", "deadline": "31/03/2023"}, "deadline"),
])
def test_bad_schedules_are_refused_naming_the_field(cal: Engine, change: dict[str, Any],
                                                    field: str) -> None:
    base = next((e for e in SCHEDULE if e["stage"] == change["stage"]), SCHEDULE[0])
    data = {k: v for k, v in {**base, **change, "reason": "uji"}.items() if v is not None}
    before = cal.store.last_position()
    with pytest.raises(ValidationError) as info:
        cal.schedule_stage(OP, PROGRAMME, data)
    assert info.value.errors[0].field == field, info.value.errors
    assert cal.store.last_position() == before


def test_only_operators_schedule(cal: Engine) -> None:
    before = cal.store.last_position()
    for actor in (Actor(id="ta", role=Role.REVIEWER),
                  Actor(id="officer", role=Role.REGIONAL_OFFICER, region="35.02")):
        with pytest.raises(PermissionDenied):
            cal.schedule_stage(actor, PROGRAMME, {**SCHEDULE[0], "reason": "x"})
    assert cal.store.last_position() == before


def _progress(cal: Engine) -> None:
    """35.02 finishes bimtek I; 35.76 is in bimtek I without its waste baseline; 33.07 is
    enrolled only."""
    for region in ("35.02", "35.76", "33.07"):
        ops.enrol(cal, PROGRAMME, region)
    for region in ("35.02", "35.76"):
        ops.open_stage(cal, PROGRAMME, region, "bimtek_1")
    ops.fill_stage(cal, PROGRAMME, "35.02", "bimtek_1")
    assert ops.close_stage(cal, PROGRAMME, "35.02", "bimtek_1").completed
    ops.fill_stage(cal, PROGRAMME, "35.76", "bimtek_1",
                   skip=frozenset({("environment", "waste_baseline")}))


def test_overdue_regions_with_days_late_and_what_is_missing(cal: Engine) -> None:
    _progress(cal)
    assert overdue(cal, PROGRAMME, date(2023, 3, 31)) == []  # due today: not late yet
    late = {o.region_code: o for o in overdue(cal, PROGRAMME, date(2023, 4, 10))}
    assert set(late) == {"35.76", "33.07"}
    assert (late["35.76"].stage, late["35.76"].days_late) == ("bimtek_1", 10)
    assert late["35.76"].missing == {"environment": ["form waste_baseline"]}
    assert late["33.07"].missing == {"plan": ["the plan is still at enrolled (completed)"]}
    # later: 35.02 is now late for bimtek II, the others still for bimtek I
    later = {o.region_code: (o.stage, o.days_late) for o in overdue(cal, PROGRAMME,
                                                                     date(2023, 5, 1))}
    assert later == {"35.02": ("bimtek_2", 3), "35.76": ("bimtek_1", 31),
                     "33.07": ("bimtek_1", 31)}
    # "now" comes from the engine's clock when no day is given
    cal.clock.day = date(2023, 4, 1)  # type: ignore[attr-defined]
    assert {o.region_code for o in overdue(cal, PROGRAMME)} == {"35.76", "33.07"}


def test_overdue_command(cal: Engine, db_url: str) -> None:
    _progress(cal)
    result = CliRunner().invoke(app, ["overdue", "--programme", PROGRAMME, "--as-of",
                                      "2023-04-10", "--json", "--db", db_url])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)[PROGRAMME]
    assert [(r["region_code"], r["days_late"]) for r in rows] == [("33.07", 10), ("35.76", 10)]
    bad = CliRunner().invoke(app, ["overdue", "--as-of", "10-04-2023", "--db", db_url])
    assert bad.exit_code == 1 and "as_of" in bad.output


def test_reminders_are_sent_once_per_deadline(cal: Engine) -> None:
    _progress(cal)
    plugin = Outbox()
    cal.registry.pm.register(plugin, name="test-outbox")
    first = send_reminders(cal, PROGRAMME, date(2023, 3, 28))  # 3 days before bimtek I's
    assert sorted(first.sent) == [f"{PROGRAMME}:33.07:bimtek_1:2023-03-31:upcoming",
                                  f"{PROGRAMME}:35.76:bimtek_1:2023-03-31:upcoming"]
    again = send_reminders(cal, PROGRAMME, date(2023, 3, 29))
    assert again.sent == [] and sorted(again.already_sent) == sorted(first.sent)
    late = send_reminders(cal, PROGRAMME, date(2023, 4, 3))  # now overdue: a new reminder
    assert sorted(late.sent) == [f"{PROGRAMME}:33.07:bimtek_1:2023-03-31:overdue",
                                 f"{PROGRAMME}:35.76:bimtek_1:2023-03-31:overdue"]
    assert sorted(plugin.calls) == sorted(first.sent + late.sent)  # each handed over once
    rows = outbox(cal, PROGRAMME)
    assert len(rows) == 4 and all(r["sent_at"] and "test-outbox" in r["delivered_by"]
                                  for r in rows)
    assert "Kota Mojokerto: Bimtek I was due on 2023-03-31 and is 3 days late" in {
        r["message"] for r in rows}


def test_failed_delivery_stays_pending_and_is_retried_once(cal: Engine) -> None:
    _progress(cal)
    key = f"{PROGRAMME}:35.76:bimtek_1:2023-03-31:upcoming"
    plugin = Outbox(fail={key})
    cal.registry.pm.register(plugin, name="flaky-mail")
    first = send_reminders(cal, PROGRAMME, date(2023, 3, 28))
    assert list(first.failed) == [key] and len(first.sent) == 1
    retry = send_reminders(cal, PROGRAMME, date(2023, 3, 28))
    assert retry.sent == [key] and retry.failed == {}
    assert plugin.calls.count(key) == 2  # failed once, delivered once
    assert len(plugin.calls) == 3


def test_done_means_finished_for_each_scheduled_stage(cal: Engine) -> None:
    _progress(cal)
    plan = cal.plan(PROGRAMME, "35.02")
    assert done(plan, "bimtek_1") and not done(plan, "bimtek_2")
    assert not done(plan, "review") and not done(plan, "approval")
