"""docs/plugins.md keeps up with the plugin contract in engine/hookspecs.py."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from engine import hookspecs
from engine.pillars import LOAD_VARIABLE, TRACE_VARIABLE

PLUGINS_MD = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
SPEC_MARKER = f"{hookspecs.PROJECT}_spec"  # the attribute pluggy's @hookspec sets


def hookspec_functions() -> dict[str, object]:
    """The functions of engine.hookspecs marked as hookspecs, found by introspection."""
    return {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, SPEC_MARKER)}


def sections() -> dict[str, str]:
    """``## title`` -> the text up to the next second-level heading."""
    text = PLUGINS_MD.read_text(encoding="utf-8")
    parts = re.split(r"^## +(.+?) *$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def top_level_split(params: str) -> list[str]:
    """Split ``a: X[[Y], Z], b: W`` at the commas outside brackets."""
    out, depth, current = [], 0, ""
    for ch in params:
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    return [p for p in (*out, current) if p.strip()]


def test_the_contract_has_hooks_to_document() -> None:
    assert set(hookspec_functions()) >= {"register_pillars", "validate_form", "stage_gate"}


@pytest.mark.parametrize("hook", sorted(hookspec_functions()))
def test_every_hook_has_a_section_with_its_signature_and_an_example(hook: str) -> None:
    body = sections().get(hook)
    assert body is not None, f"docs/plugins.md has no '## {hook}' section"
    params = inspect.signature(hookspec_functions()[hook]).parameters  # type: ignore[arg-type]
    signature = re.search(rf"def {hook}\((.*?)\)\s*->", body, flags=re.DOTALL)
    assert signature, f"'## {hook}' does not show `def {hook}(...) -> ...`"
    shown = [p.split(":")[0].strip() for p in top_level_split(signature.group(1))]
    assert shown == list(params), f"'## {hook}' shows parameters {shown}, not {list(params)}"
    for part in ("**When:**", "**Arguments:**", "**Returns:**", "@hookimpl"):
        assert part in body, f"'## {hook}' lacks {part}"


def test_no_section_documents_a_hook_that_does_not_exist() -> None:
    hooks = set(hookspec_functions())
    named_like_hooks = {t for t in sections() if re.fullmatch(r"[a-z_]+", t)}
    assert named_like_hooks <= hooks, named_like_hooks - hooks


def test_the_environment_variables_are_documented() -> None:
    text = PLUGINS_MD.read_text(encoding="utf-8")
    for variable in (LOAD_VARIABLE, TRACE_VARIABLE, "SMARTCITY_REPLACE_PILLARS",
                     "smartcity.pillars"):
        assert variable in text
