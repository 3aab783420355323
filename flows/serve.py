"""Serve the cohort flows from this process: the no-worker way to run them on a server.

    PREFECT_API_URL=http://prefect:4200/api SMARTCITY_DATABASE_URL=postgresql://... \\
        python -m flows.serve

Equivalent to the deployments in prefect.yaml, without a work pool.
"""

from __future__ import annotations

import os
from typing import Any

from flows.programme import programme_flow, report_flow, stage_flow
from flows.reminders import reminder_flow
from flows.runtime import apply_local_defaults


def deployments(db_url: str, programme: str) -> list[Any]:
    """The runner deployments :func:`main` serves (built without talking to a server)."""
    return [
        stage_flow.to_deployment(name="stage", parameters={
            "db_url": db_url, "programme": programme, "stage": "bimtek_1", "simulate": False}),
        report_flow.to_deployment(name="report", cron="0 6 * * *",
                                  parameters={"db_url": db_url, "programme": programme}),
        reminder_flow.to_deployment(name="reminders", cron="0 7 * * *",
                                    parameters={"db_url": db_url, "programme": programme}),
        programme_flow.to_deployment(name="rehearsal", parameters={
            "db_url": db_url, "programme": f"latihan-{programme}", "simulate": True}),
    ]


def main() -> None:  # pragma: no cover - runs until stopped
    from prefect import serve

    apply_local_defaults()
    url = os.environ.get("SMARTCITY_DATABASE_URL")
    if not url:
        raise SystemExit("set SMARTCITY_DATABASE_URL to the shared event store (PostgreSQL)")
    serve(*deployments(url, os.environ.get("SMARTCITY_PROGRAMME", "m100-2026")))


if __name__ == "__main__":  # pragma: no cover
    main()
