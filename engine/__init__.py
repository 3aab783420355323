"""Smart-city masterplan engine: event-sourced workflow with plugin pillars.

Pillar plugins write ``from engine import hookimpl``.
"""

from engine.hookspecs import CONTRACT_VERSION, hookimpl

__all__ = ["CONTRACT_VERSION", "hookimpl", "__version__"]
__version__ = "0.1.0"
