"""Prefect flows that run a cohort. Thin: they sequence engine operations, nothing more."""

import os as _os

# Before Prefect is imported anywhere through this package: the engine's structured log
# lines (logger "smartcity") go to Prefect's run logs too.
_os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "smartcity")
