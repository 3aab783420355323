"""One error hierarchy for the whole engine.

Every error carries what the user needs to fix the input; ``to_dict`` gives the
same content to the CLI (one line) and to an HTTP API (JSON body).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class SmartCityError(Exception):
    """Root of every error the engine raises on purpose."""

    code = "error"

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": str(self)}


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a submitted form or command."""

    field: str
    message: str
    pillar: str | None = None
    form: str | None = None
    fix: str | None = None

    def __str__(self) -> str:
        where = ".".join(p for p in (self.pillar, self.form) if p)
        prefix = f"{where}: " if where else ""
        hint = f" (fix: {self.fix})" if self.fix else ""
        return f"{prefix}{self.field}: {self.message}{hint}"


class ValidationError(SmartCityError):
    """Input was rejected; ``errors`` names every field at fault. Nothing was written."""

    code = "validation_error"

    def __init__(self, errors: list[FieldError] | FieldError, summary: str | None = None):
        self.errors = [errors] if isinstance(errors, FieldError) else list(errors)
        if not self.errors:
            raise ValueError("ValidationError needs at least one FieldError")
        self.summary = summary
        head = summary or "invalid input"
        super().__init__(f"{head}: " + "; ".join(str(e) for e in self.errors))

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.code,
            "message": str(self),
            "errors": [asdict(e) for e in self.errors],
        }

    @classmethod
    def from_pydantic(
        cls, exc: Any, *, pillar: str | None = None, form: str | None = None, prefix: str = ""
    ) -> "ValidationError":
        """Translate a pydantic ValidationError, keeping the field path of each problem."""
        errors = []
        for err in exc.errors(include_url=False):
            loc = field_path(err.get("loc", ())) or "(form)"
            errors.append(
                FieldError(
                    field=f"{prefix}{loc}",
                    message=err.get("msg", "invalid"),
                    pillar=pillar,
                    form=form,
                    fix=_FIXES.get(err.get("type", ""), "correct this value"),
                )
            )
        return cls(errors)


def field_path(loc: Any) -> str:
    """``("items", 0, "agency")`` -> ``items[0].agency``: the one way paths are written."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# What to do about pydantic's error types, in words a regional officer can act on.
_FIXES = {
    "missing": "fill in this field",
    "extra_forbidden": "remove this field: the form does not have it",
    "int_parsing": "give a whole number",
    "int_type": "give a whole number",
    "int_from_float": "give a whole number",
    "decimal_parsing": "give a number written as text, e.g. \"2.71\"",
    "string_type": "give text",
    "string_too_short": "fill in this field",
    "string_too_long": "shorten the text",
    "string_pattern_mismatch": "use the expected format",
    "too_short": "add at least the required number of items",
    "too_long": "remove items: the list is too long",
    "greater_than": "give a larger value",
    "greater_than_equal": "give a larger value",
    "less_than": "give a smaller value",
    "less_than_equal": "give a smaller value",
    "literal_error": "choose one of the allowed values",
    "enum": "choose one of the allowed values",
    "date_from_datetime_parsing": "give a date as YYYY-MM-DD",
    "date_parsing": "give a date as YYYY-MM-DD",
    "date_type": "give a date as YYYY-MM-DD",
    "bool_parsing": "give true or false",
    "dict_type": "give an object with the form's fields",
    "list_type": "give a list",
    "model_type": "give an object with the form's fields",
    "value_error": "correct this value",
}


class ConcurrencyError(SmartCityError):
    """The stream moved on since it was read; reload and retry. Nothing was written."""

    code = "concurrency_conflict"

    def __init__(self, stream_id: str, expected: int, actual: int | None = None):
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        found = "" if actual is None else f", found version {actual}"
        super().__init__(
            f"stream {stream_id!r} was changed by someone else: expected version {expected}{found}"
        )


class TransitionError(SmartCityError):
    """The command is not allowed in the plan's current stage. Nothing was written."""

    code = "invalid_transition"

    def __init__(self, message: str, *, stage: str | None = None, allowed: list[str] | None = None,
                 missing: dict[str, list[str]] | None = None):
        self.stage = stage
        self.allowed = allowed or []
        self.missing = missing or {}
        parts = [message]
        if stage is not None:
            parts.append(f"the plan is in stage {stage!r}")
            parts.append(
                "allowed from there: " + (", ".join(self.allowed) if self.allowed else "nothing")
            )
        super().__init__("; ".join(parts))

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(stage=self.stage, allowed=self.allowed, missing=self.missing)
        return out


class PermissionDenied(SmartCityError):
    """The actor's role does not allow the command. Nothing was written."""

    code = "permission_denied"


class NotFound(SmartCityError):
    """A programme, plan, region or other named thing does not exist."""

    code = "not_found"


class PluginError(SmartCityError):
    """A pillar plugin is broken; the message names the plugin."""

    code = "plugin_error"

    def __init__(self, plugin: str, message: str):
        self.plugin = plugin
        super().__init__(f"pillar plugin {plugin!r}: {message}")


class IntegrityError(SmartCityError):
    """The audit log does not verify (a hash chain is broken)."""

    code = "integrity_error"
