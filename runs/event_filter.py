"""A webhook's event filter: which payloads start a run. No Django here (file loaders use it).

    {"mode": "all" | "any",
     "conditions": [{"path": "a.b", "operator": "equals" | "not_equals" | "contains" | "exists",
                     "value": ...}]}

A path walks the JSON payload by keys (and list indexes); `headers.<lowercase name>` reads a
request header instead (GitHub names its event only in `X-GitHub-Event`).
"""

from __future__ import annotations

from typing import Any

OPERATORS = ("equals", "not_equals", "contains", "exists")
MODES = ("all", "any")
MAX_CONDITIONS = 50
_MISSING = object()


def check_filter(value: Any) -> list[tuple[str, str]]:
    """Problems with a filter as (field, message); empty when valid. None means no filter."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [("event_filter", "must be an object with mode and conditions, or null")]
    problems = []
    unknown = set(value) - {"mode", "conditions"}
    if unknown:
        problems.append(("event_filter", f"unknown key(s): {', '.join(sorted(unknown))}"))
    if value.get("mode", "all") not in MODES:
        problems.append(("event_filter.mode", "must be all or any"))
    conditions = value.get("conditions", [])
    if not isinstance(conditions, list):
        return [*problems, ("event_filter.conditions", "must be a list")]
    if len(conditions) > MAX_CONDITIONS:
        problems.append(("event_filter.conditions", f"at most {MAX_CONDITIONS} conditions"))
    for i, cond in enumerate(conditions):
        where = f"event_filter.conditions.{i}"
        if not isinstance(cond, dict):
            problems.append((where, "must be an object with path, operator and value"))
            continue
        unknown = set(cond) - {"path", "operator", "value"}
        if unknown:
            problems.append((where, f"unknown key(s): {', '.join(sorted(unknown))}"))
        path = cond.get("path")
        if not isinstance(path, str) or not path.strip() or len(path) > 500:
            problems.append((f"{where}.path", "must be a dotted path like a.b"))
        elif path in ("headers", "headers."):
            problems.append((f"{where}.path", "name a header: headers.<lowercase name>"))
        if cond.get("operator") not in OPERATORS:
            problems.append((f"{where}.operator", f"must be one of {', '.join(OPERATORS)}"))
        elif cond["operator"] != "exists" and "value" not in cond:
            problems.append((f"{where}.value", "is required for this operator"))
        elif cond["operator"] == "exists" and not isinstance(cond.get("value", True), bool):
            problems.append((f"{where}.value", "must be true or false for exists"))
    return problems


def resolve(path: str, payload: Any, headers: dict[str, str]) -> Any:
    """The value at `path`, or _MISSING."""
    if path.startswith("headers."):
        return headers.get(path.removeprefix("headers.").lower(), _MISSING)
    value = payload
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _equal(a: Any, b: Any) -> bool:
    # JSON has one number type, but True must not equal 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _contains(found: Any, wanted: Any) -> bool:
    if isinstance(found, str):
        return isinstance(wanted, str) and wanted in found
    if isinstance(found, list):
        return any(_equal(item, wanted) for item in found)
    if isinstance(found, dict):
        return isinstance(wanted, str) and wanted in found
    return False


def condition_holds(cond: dict, payload: Any, headers: dict[str, str]) -> bool:
    found = resolve(cond["path"], payload, headers)
    operator = cond["operator"]
    if operator == "exists":
        return (found is not _MISSING) == cond.get("value", True)
    if found is _MISSING:
        return operator == "not_equals"
    if operator == "equals":
        return _equal(found, cond["value"])
    if operator == "not_equals":
        return not _equal(found, cond["value"])
    return _contains(found, cond["value"])


def matches(event_filter: dict | None, payload: Any, headers: dict[str, str]) -> bool:
    """True if the payload passes the filter (no filter, or no conditions: everything passes)."""
    if not event_filter or not event_filter.get("conditions"):
        return True
    results = (condition_holds(c, payload, headers) for c in event_filter["conditions"])
    return any(results) if event_filter.get("mode", "all") == "any" else all(results)
