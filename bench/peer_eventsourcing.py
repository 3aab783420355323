"""The peer: the ``eventsourcing`` library (bench extra), storing the same plan events.

Its aggregates record the same fields our plan events carry (~300 bytes of JSON each,
measured in the run), through its own SQLite or PostgreSQL persistence module.
"""

from __future__ import annotations

from typing import Any

try:  # optional: the bench runs (and says "not installed") without it
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    VERSION: str | None = __import__("importlib.metadata").metadata.version("eventsourcing")
except ImportError:  # pragma: no cover - depends on the environment
    VERSION = None


def label() -> str:
    return f"eventsourcing {VERSION}" if VERSION else "eventsourcing"


if VERSION:

    class Plan(Aggregate):
        """A region's plan, as an eventsourcing aggregate."""

        @event("Enrolled")
        def __init__(self, region_code: str, programme_id: str) -> None:
            self.region_code = region_code
            self.programme_id = programme_id
            self.forms: dict[str, dict[str, Any]] = {}
            self.progress: dict[str, list[tuple[int, str]]] = {}

        @event("FormSubmitted")
        def submit_form(self, pillar: str, stage: str, form: str, data: dict[str, Any],
                        form_schema_version: int = 1) -> None:
            self.forms[f"{stage}/{pillar}/{form}"] = data

        @event("QuickWinProgressReported")
        def report_progress(self, quick_win_id: str, completion_percent: int, reason: str,
                            evidence: str) -> None:
            self.progress.setdefault(quick_win_id, []).append((completion_percent, reason))

    class PlanApp(Application[Any]):
        pass


def apply_plan_event(plan: Any, ev: Any) -> None:
    """Record one of our domain events on the peer's aggregate (same fields)."""
    from engine.domain import plan as P

    if isinstance(ev, P.FormSubmitted):
        plan.submit_form(pillar=ev.pillar, stage=ev.stage, form=ev.form, data=ev.data)
    elif isinstance(ev, P.QuickWinProgressReported):
        plan.report_progress(quick_win_id=ev.quick_win_id,
                             completion_percent=ev.completion_percent, reason=ev.reason,
                             evidence=ev.evidence)


def make_app(location: dict[str, Any]) -> Any:
    if location["kind"] == "sqlite":
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
               "SQLITE_DBNAME": location["path"].replace("events.db", "eventsourcing.db")}
    else:
        from urllib.parse import urlsplit

        parts = urlsplit(location["conninfo"])
        env = {"PERSISTENCE_MODULE": "eventsourcing.postgres",
               "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
               "POSTGRES_HOST": parts.hostname or "127.0.0.1",
               "POSTGRES_PORT": str(parts.port or 5432),
               "POSTGRES_USER": parts.username or "postgres",
               "POSTGRES_PASSWORD": parts.password or "",
               "POSTGRES_SCHEMA": location["schema"]}
    return PlanApp(env=env)


def commit_mode(app: Any, location: dict[str, Any]) -> str:
    """Read the settings on the peer's own connection."""
    from bench.databases import commit_mode as read

    with app.recorder.datastore.transaction(commit=False) as cursor:
        return read(location, cursor)


def stored_state_bytes(app: Any, location: dict[str, Any]) -> float:
    """Average size of the peer's stored event state (its payload column)."""
    table = "stored_events" if location["kind"] == "sqlite" else f'"{location["schema"]}".planapp_events'
    column = "state"
    with app.recorder.datastore.transaction(commit=False) as cursor:
        if location["kind"] == "sqlite":
            cursor.execute(f"SELECT avg(length({column})) FROM {table} "
                           "WHERE topic LIKE '%FormSubmitted' OR topic LIKE '%ProgressReported'")
        else:
            cursor.execute(f"SELECT avg(octet_length({column})) FROM {table} "
                           "WHERE topic LIKE '%%FormSubmitted' OR topic LIKE '%%ProgressReported'")
        row = cursor.fetchone()
    value = row[0] if not isinstance(row, dict) else next(iter(row.values()))
    return round(float(value or 0), 1)
