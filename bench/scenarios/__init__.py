"""Scenarios register themselves on import (bench.core.scenario); import each module here.

Adding a scenario: write a function decorated with ``@scenario(id, title, order)`` in a
module of this package (or an existing one) and list the module below.
"""

from bench.scenarios import append, cohort, growth, integrity, replay  # noqa: F401
