"""The programme calendar at work: who is behind schedule, and deadline reminders.

"Now" always comes from the caller (``as_of``, from the engine's injectable clock by
default), never from the wall clock here, so answers and replays are deterministic.

Reminders go through the ``notify`` hook. Each is first recorded in the outbox under a
key naming its plan, stage, deadline and kind; a key already there is never sent again,
so a re-run or a retried flow sends nothing twice. A reminder whose hooks failed stays
pending and is retried by the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.application import Engine
from engine.chain import format_time
from engine.domain import plan as P
from engine.domain.programme import SCHEDULED, Schedule
from engine.logs import get_logger
from engine.pillars import Reminder
from engine.store.schema import reminder_outbox

UPCOMING_DAYS = 7  # remind this many days ahead of a deadline


@dataclass(frozen=True)
class Overdue:
    region_code: str
    region_name: str
    stage: str
    deadline: date
    days_late: int
    plan_stage: str
    missing: dict[str, list[str]]

    def to_dict(self) -> dict[str, Any]:
        return {"region_code": self.region_code, "region_name": self.region_name,
                "stage": self.stage, "deadline": self.deadline.isoformat(),
                "days_late": self.days_late, "plan_stage": self.plan_stage,
                "missing": self.missing}


def done(plan: P.PlanState, stage: str) -> bool:
    """Whether ``plan`` has finished the scheduled ``stage``."""
    if stage == "approval":
        return plan.stage == "approved"
    if stage == "review":
        return plan.stage == "approved" or (plan.stage == "review" and plan.status == "done")
    here, there = P.STAGES.index(plan.stage), P.STAGES.index(stage)
    return here > there or (here == there and plan.status == "done")


def _missing(engine: Engine, plan: P.PlanState, stage: str) -> dict[str, list[str]]:
    if stage in P.BIMTEK_STAGES and plan.stage == stage and plan.status == "open":
        return {p: m for p, m in engine.registry.gate(plan, stage).items() if m}
    if stage == "review" and plan.stage == "review":
        return {"plan": ["the experts' review is not finished"]}
    if stage == "approval" and plan.stage == "review" and plan.status == "done":
        return {"plan": ["the regent has not approved the plan"]}
    if stage == "approval" and plan.stage == "review":
        return {"plan": ["the review is not finished, so the regent cannot approve yet"]}
    return {"plan": [f"the plan is still at {plan.stage}"
                     + (" (in progress)" if plan.status == "open" else " (completed)")]}


def overdue(engine: Engine, programme_id: str, as_of: date | None = None) -> list[Overdue]:
    """Each enrolled region behind schedule: the first stage whose deadline has passed
    without it being finished, how late, and what is missing (per pillar, from the gates)."""
    today = as_of or engine.clock().date()
    programme = engine.programme(programme_id)
    due = [programme.schedule[s] for s in SCHEDULED
           if s in programme.schedule and programme.schedule[s].deadline < today]
    out = []
    for plan in sorted(engine.plans(programme_id), key=lambda p: p.region_code):
        for entry in due:
            if not done(plan, entry.stage):
                out.append(Overdue(plan.region_code, plan.region_name, entry.stage,
                                   entry.deadline, (today - entry.deadline).days, plan.stage,
                                   _missing(engine, plan, entry.stage)))
                break
    return out


def _message(plan: P.PlanState, entry: Schedule, kind: str, today: date) -> str:
    stage = P.STAGE_LABELS.get(entry.stage, entry.stage).split(" - ")[0]
    if kind == "upcoming":
        days = (entry.deadline - today).days
        return (f"{plan.region_name}: {stage} is due on {entry.deadline.isoformat()} "
                f"({days} day{'s' if days != 1 else ''} left)")
    return (f"{plan.region_name}: {stage} was due on {entry.deadline.isoformat()} and is "
            f"{(today - entry.deadline).days} days late")


def due_reminders(engine: Engine, programme_id: str, as_of: date | None = None,
                  upcoming_days: int = UPCOMING_DAYS) -> list[Reminder]:
    """Reminders for every unfinished stage due within ``upcoming_days`` or already late."""
    today = as_of or engine.clock().date()
    programme = engine.programme(programme_id)
    out = []
    for plan in sorted(engine.plans(programme_id), key=lambda p: p.region_code):
        for stage in SCHEDULED:
            entry = programme.schedule.get(stage)
            if entry is None or done(plan, stage):
                continue
            left = (entry.deadline - today).days
            kind = "overdue" if left < 0 else "upcoming" if left <= upcoming_days else None
            if kind is None:
                continue
            key = (f"{programme_id}:{plan.region_code}:{stage}:{entry.deadline.isoformat()}:"
                   f"{kind}")
            out.append(Reminder(key, programme_id, plan.region_code, stage, entry.deadline,
                                kind, _message(plan, entry, kind, today)))  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class SendResult:
    sent: list[str]
    already_sent: list[str]
    failed: dict[str, str]


def send_reminders(engine: Engine, programme_id: str, as_of: date | None = None,
                   upcoming_days: int = UPCOMING_DAYS) -> SendResult:
    """Record each due reminder in the outbox (once per deadline), then hand it to the
    ``notify`` hooks. Safe to re-run: what was sent is never sent again."""
    log = get_logger().bind(programme=programme_id)
    store = engine.store
    now = format_time(engine.clock())
    sent, already, failed = [], [], {}
    for reminder in due_reminders(engine, programme_id, as_of, upcoming_days):
        with store.engine.connect().execution_options(smartcity_write=True) as conn:
            with conn.begin():
                row = conn.execute(select(reminder_outbox.c.sent_at).where(
                    reminder_outbox.c.reminder_id == reminder.reminder_id)).first()
                if row is None:
                    try:
                        conn.execute(insert(reminder_outbox), {
                            "reminder_id": reminder.reminder_id,
                            "programme_id": programme_id, "region_code": reminder.region_code,
                            "stage": reminder.stage, "deadline": reminder.deadline.isoformat(),
                            "kind": reminder.kind, "message": reminder.message,
                            "created_at": now, "sent_at": None})
                    except IntegrityError:
                        row = (now,)  # another run recorded it this instant
        if row is not None and row[0] is not None:
            already.append(reminder.reminder_id)
            continue
        try:
            delivered = [name for name, ok in engine.registry.notify(reminder) if ok]
        except Exception as exc:  # noqa: BLE001 - a delivery failure stays pending
            failed[reminder.reminder_id] = str(exc)
            log.warning("reminder.failed", reminder=reminder.reminder_id, error=str(exc))
            continue
        with store.engine.connect().execution_options(smartcity_write=True) as conn:
            with conn.begin():
                conn.execute(update(reminder_outbox)
                             .where(reminder_outbox.c.reminder_id == reminder.reminder_id,
                                    reminder_outbox.c.sent_at.is_(None))
                             .values(sent_at=now, delivered_by=",".join(delivered)))
        log.info("reminder.sent", reminder=reminder.reminder_id, kind=reminder.kind,
                 region=reminder.region_code, stage=reminder.stage,
                 deadline=reminder.deadline.isoformat(), message=reminder.message,
                 delivered_by=delivered)
        sent.append(reminder.reminder_id)
    return SendResult(sent, already, failed)


def outbox(engine: Engine, programme_id: str) -> list[dict[str, Any]]:
    with engine.store.engine.connect() as conn:
        rows = conn.execute(select(reminder_outbox)
                            .where(reminder_outbox.c.programme_id == programme_id)
                            .order_by(reminder_outbox.c.created_at,
                                      reminder_outbox.c.reminder_id))
        return [{str(k): v for k, v in r._mapping.items()} for r in rows]
