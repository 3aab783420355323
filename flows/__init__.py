"""Prefect flows that run a cohort. Thin: they sequence engine operations, nothing more."""
