"""Validate run input against a task's JSON Schema, with errors that name the field and rule."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

_FORMAT_CHECKER = FormatChecker()

MAX_JSON_DEPTH = 64
MAX_TIMEOUT_SECONDS = 2_147_483_647  # the largest value the column holds on every database
MAX_BACKOFF_LIMIT = 100


def storable_text(value: str) -> str:
    """`value`, or ValueError if no database would store it (PostgreSQL refuses NUL)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def loads_json(text: str | bytes) -> Any:
    """Parse JSON that came from outside, as strictly as the databases store it.

    ValueError (with a message for a person) for what is not JSON or cannot be stored:
    NaN and Infinity, numbers beyond a float's range (`1e400`), and nesting so deep that the
    parser itself gives up. Shallower but still excessive nesting is json_problem's to refuse.
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nested too deep to read") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


def json_problem(value: Any) -> str | None:
    """Why a parsed JSON value cannot be stored as it is, or None. Walks without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"is nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, depth))
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, float) and not math.isfinite(item):
            return "holds a number that is not finite (NaN or Infinity)"
        elif isinstance(item, str):
            try:
                storable_text(item)
            except ValueError as exc:
                return f"holds a string that {exc}"
    return None


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path from the top, e.g. "input.filters.0.name"; "input" for the root
    message: str
    rule: str  # the JSON Schema keyword that failed, e.g. "minimum", "required", "type"

    def as_dict(self) -> dict:
        return {"field": self.field, "message": self.message, "rule": self.rule}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _join(prefix: str, parts) -> str:
    return ".".join([prefix, *(str(p) for p in parts)])


_validators: dict[int, tuple[dict, Draft202012Validator]] = {}
_VALIDATORS_MAX = 256


def _validator_for(schema: dict) -> Draft202012Validator:
    """One validator per schema object, built once: a task's schema is the same dict from one
    discovery to the next (until its file changes), and creates validate against it each time.
    The entry holds the schema itself, so its id cannot be reused by another dict meanwhile."""
    entry = _validators.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1]
    validator = Draft202012Validator(schema, format_checker=_FORMAT_CHECKER)
    if len(_validators) >= _VALIDATORS_MAX:
        _validators.clear()
    _validators[id(schema)] = (schema, validator)
    return validator


def schema_errors(schema: dict | None, data: Any, prefix: str = "input") -> list[FieldError]:
    """Every way `data` breaks `schema`, sorted by field; [] when it is valid or there is no schema."""
    if not schema:
        return []
    validator = _validator_for(schema)
    errors = []
    for err in validator.iter_errors(data):
        path = list(err.absolute_path)
        if err.validator == "required":
            # Point at the missing field itself, not at its parent object.
            # One error per missing name; match the message rather than parse it, so a name
            # with a quote in it (repr'd with double quotes) is still found.
            missing = next(
                (n for n in err.validator_value if err.message == f"{n!r} is a required property"),
                None,
            )
            path = [*path, missing] if missing is not None else path
            message = "is required"
        elif err.validator == "additionalProperties":
            message = err.message.replace(
                "Additional properties are not allowed", "unknown field(s) not allowed"
            )
        else:
            message = err.message
        errors.append(
            FieldError(field=_join(prefix, path), message=message, rule=str(err.validator))
        )
    errors.sort(key=lambda e: e.field)
    return errors


def apply_defaults(schema: dict | None, data: Any) -> Any:
    """Fill in `default`s of missing object properties, recursively, without touching `data`."""
    if not schema or not isinstance(data, dict) or schema.get("type", "object") != "object":
        return data
    result = copy.deepcopy(data)
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if name not in result and "default" in prop:
            result[name] = copy.deepcopy(prop["default"])
        # Also when the object itself came from a default: `"default": {}` still gets its
        # properties' defaults, so a task can rely on them.
        if isinstance(result.get(name), dict):
            result[name] = apply_defaults(prop, result[name])
    return result
