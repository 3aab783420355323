"""structlog set-up: JSON lines when not on a terminal, readable lines on one."""

from __future__ import annotations

import logging
import os
import sys

import structlog

_configured = False


def configure(level: str | None = None, json: bool | None = None) -> None:
    """Route structlog through the standard library (so Prefect's run logs catch engine lines)
    and render JSON unless stderr is a terminal."""
    global _configured
    level = (level or os.environ.get("SMARTCITY_LOG_LEVEL", "WARNING")).upper()
    if json is None:
        json = not sys.stderr.isatty()
    renderer = (structlog.processors.JSONRenderer() if json
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            # first: a line below the level costs a level check, not a rendered line
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger("smartcity")
    root.setLevel(getattr(logging, level, logging.WARNING))
    if not any(getattr(h, "_smartcity", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._smartcity = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    _configured = True


def get_logger(name: str = "smartcity.engine") -> structlog.stdlib.BoundLogger:
    if not _configured:
        configure()
    return structlog.get_logger(name)
