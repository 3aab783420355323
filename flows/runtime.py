"""Prefect settings for local runs, and the engines tasks share within one process."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from engine.application import Engine

_engines: dict[str, Engine] = {}
_lock = threading.Lock()

# Quiet and offline: no telemetry, generous start-up for the ephemeral server on 2 cores.
LOCAL_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "smartcity",
    # the engine also logs outside flow runs (the CLI, the API, a demo's set-up): those
    # lines go to stderr only, without a warning that they have no run to go to
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "0.5",
}


def apply_local_defaults() -> None:
    """Set (without overriding the user's) the environment Prefect reads at import."""
    for key, value in LOCAL_DEFAULTS.items():
        os.environ.setdefault(key, value)


def engine_for(url: str) -> Engine:
    """One Engine per database per process; tasks run in threads and share it."""
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            eng = _engines[url] = Engine(url)
        return eng


def forget_engines() -> None:
    with _lock:
        for eng in _engines.values():
            eng.close()
        _engines.clear()


@contextlib.contextmanager
def local_run(heartbeat: bool = False) -> Iterator[None]:
    """Run flows in this process without the ~1 s per-flow heartbeat thread (keep it on
    for deployed runs, where it detects crashed runs)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    if heartbeat:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
