"""The whole pillar-plugin contract (version 1).

A pillar plugin is a module or object with functions marked ``@hookimpl``
(``from engine import hookimpl``), published under the entry-point group
``smartcity.pillars``. Hooks that contribute things receive a ``register``
callback; the engine checks every item (types, duplicate ids) and tags it with
the plugin that gave it, so a bad plugin fails loudly with its name.

Contract versions: a plugin states the version it was written for in
``PillarSpec.contract``. The engine accepts every version in
``SUPPORTED_CONTRACTS`` and refuses others with a message naming the plugin.
Each hook below is documented in docs/plugins.md (a test keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from engine.domain.plan import PlanState
    from engine.errors import FieldError
    from engine.pillars import FormSpec, IndicatorSpec, PillarSpec, Reminder

PROJECT = "smartcity"
CONTRACT_VERSION = 1
SUPPORTED_CONTRACTS = frozenset({1})

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -------------------------------------------------------------------------------------
# Identity and content: called once when the plugins are loaded.
# -------------------------------------------------------------------------------------


@hookspec
def register_pillars(register: Callable[[PillarSpec], None]) -> None:
    """Contribute the pillars this plugin provides (usually exactly one).

    Call ``register(PillarSpec(...))`` once per pillar. Two plugins giving the same
    pillar id is an error naming both, unless the later one is loaded with
    ``replace=True`` semantics through ``SMARTCITY_REPLACE_PILLARS``.

    :param register: checks and records one ``PillarSpec``.
    """


@hookspec
def register_indicators(register: Callable[[IndicatorSpec], None]) -> None:
    """Contribute the indicators of this plugin's pillars.

    Call ``register(IndicatorSpec(...))`` for each; ids are unique across all pillars and the
    pillar must be registered by the same plugin.

    :param register: checks and records one ``IndicatorSpec``.
    """


@hookspec
def register_forms(register: Callable[[FormSpec], None]) -> None:
    """Contribute the forms this plugin's pillars require (or accept) at each stage.

    Call ``register(FormSpec(...))`` for each; a form's ``model`` is a pydantic model
    whose JSON Schema is what a UI renders. Required forms gate their stage.

    :param register: checks and records one ``FormSpec``.
    """


# -------------------------------------------------------------------------------------
# Validation and gates: called while commands are handled.
# -------------------------------------------------------------------------------------


@hookspec
def validate_form(
    pillar: str, stage: str, form: str, data: dict[str, Any], plan: PlanState
) -> list[FieldError] | None:
    """Check a submitted form beyond its schema, with the plan's current state at hand.

    Called for every submission after the form's model accepted it; ``data`` is the
    model's JSON-ready dump. Return a list of ``FieldError`` (empty or None: no objection).
    Results of all plugins are combined; any error rejects the submission and nothing is
    written. Plugins ignore pillars they do not own.

    :param pillar: the pillar id the form belongs to.
    :param stage: ``bimtek_1`` .. ``bimtek_4``.
    :param form: the form id.
    :param data: the submitted data, validated by the form's model.
    :param plan: the plan's state before this submission.
    """


@hookspec
def stage_gate(pillar: str, stage: str, plan: PlanState) -> list[str] | None:
    """Say what is still missing for ``pillar`` before ``stage`` can be completed.

    The engine already requires every required form of the stage; this hook adds
    pillar-specific conditions. Return human-readable items still missing (empty or
    None: complete). Results of all plugins are concatenated.

    :param pillar: the pillar id being checked.
    :param stage: the stage being completed.
    :param plan: the plan's current state.
    """


# -------------------------------------------------------------------------------------
# Notifications: called by the reminder flow.
# -------------------------------------------------------------------------------------


@hookspec
def notify(reminder: Reminder) -> bool | None:
    """Deliver a deadline reminder (e-mail, chat, ...).

    Return True when delivered. The engine records every reminder in its outbox before
    calling this hook and never sends the same reminder twice for the same deadline.

    :param reminder: who to remind of which deadline, and why.
    """
