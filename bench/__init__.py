"""Benchmarks of the engine beside the eventsourcing library and the database's own limits.

Run ``python -m bench`` (``--quick`` for a CI-sized smoke run); see BENCHMARKS.md.
"""
