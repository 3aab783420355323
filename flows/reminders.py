"""The daily deadline-reminder flow: finds upcoming and passed deadlines and sends each
reminder once through the ``notify`` hook (the outbox makes re-runs and retries safe)."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from engine.calendar import send_reminders
from flows.runtime import engine_for


class RemindersPending(RuntimeError):
    """Some reminders could not be delivered; a retry sends those (and only those)."""


@task(name="send-reminders", retries=3, retry_delay_seconds=1, cache_policy=NO_CACHE,
      persist_result=False)
def send_due_reminders(db_url: str, programme: str, as_of: str | None) -> dict[str, Any]:
    result = send_reminders(engine_for(db_url), programme,
                            date.fromisoformat(as_of) if as_of else None)
    if result.failed:
        raise RemindersPending(f"{len(result.failed)} reminders not delivered: "
                               + "; ".join(f"{k}: {v}" for k, v in result.failed.items()))
    return {"sent": result.sent, "already_sent": result.already_sent}


@flow(name="reminders")
def reminder_flow(db_url: str, programme: str, as_of: str | None = None) -> dict[str, Any]:
    """Send the reminders due ``as_of`` (default: the engine's clock, i.e. today)."""
    return send_due_reminders(db_url, programme, as_of)
