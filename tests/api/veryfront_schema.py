"""The Veryfront Runs wire schema, written out in Python for the contract tests.

Source: the `runs` module of the `veryfront` npm package, version 0.1.1031
(`esm/src/runs/schemas.js`: zod schemas `RunSchema`, `CreateRunResponseSchema`,
`CancelRunResponseSchema`, `RunEventListSchema`, `RunListSchema`). The SDK parses every response
with those schemas; a response they refuse is an exception in the caller's code. This module
states the same rules as data plus a small checker, so that a test can say which rule broke.

How zod reads the declarations, and so how this checker does:
- a key without `.optional()` must be present; `.nullable()` also allows null;
- `.optional()` allows the key to be absent (JSON has no `undefined`), but not null;
- `z.string()` is a string, `z.number()` any number, `.int()` an integer, `z.boolean()` a bool,
  `z.unknown()` anything, `z.literal(null)` exactly null, `z.enum([...])` one of the values;
- objects are not strict in zod (unknown keys are stripped), but Studio's own rule is stricter:
  every declared key present and no other key, which `check(..., closed=True)` enforces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class T:
    """One type: `kind` is string|int|number|boolean|unknown|null|enum|array|object."""

    kind: str
    nullable: bool = False
    optional: bool = False
    values: tuple = ()  # enum members
    items: T | None = None  # array element type
    fields: dict | None = None  # object keys -> T

    def null(self) -> T:
        return T(self.kind, True, self.optional, self.values, self.items, self.fields)

    def opt(self) -> T:
        return T(self.kind, self.nullable, True, self.values, self.items, self.fields)


def string() -> T:
    return T("string")


def integer() -> T:
    return T("int")


def number() -> T:
    return T("number")


def boolean() -> T:
    return T("boolean")


def unknown() -> T:
    return T("unknown")


def literal_null() -> T:
    return T("null")


def enum(*values: str) -> T:
    return T("enum", values=values)


def array(items: T) -> T:
    return T("array", items=items)


def obj(**fields: T) -> T:
    return T("object", fields=fields)


# --- The declarations of veryfront@0.1.1031 runs/schemas ---------------------------------------

RUN_KINDS = ("agent", "workflow", "task", "eval")
RUN_STATUSES = ("pending", "running", "waiting", "completed", "failed", "cancelled")
OWNER_KINDS = ("conversation", "project")
RUNTIME_TARGET_KINDS = ("main_branch", "environment", "preview_branch")
TRIGGER_KINDS = ("manual", "schedule", "webhook", "api")

RUN_EXECUTION_ERROR = obj(
    message=string(),
    code=string().opt(),
    detail=unknown().opt(),
)

RUN = obj(
    run_id=string(),
    kind=enum(*RUN_KINDS),
    status=enum(*RUN_STATUSES),
    owner=obj(kind=enum(*OWNER_KINDS), id=string()),
    parent_run_id=string().null(),
    root_run_id=string(),
    waiting_reason=string().null(),
    metadata=unknown().null(),
    target=string().null(),
    workflow_id=string().null(),
    schedule_id=string().null(),
    batch_id=string().null(),
    runtime_target_kind=enum(*RUNTIME_TARGET_KINDS).null(),
    runtime_target_environment_id=string().null(),
    runtime_target_branch_id=string().null(),
    input=unknown().null(),
    config=unknown().null(),
    output=unknown().null(),
    error=RUN_EXECUTION_ERROR.null(),
    logs=string().null(),
    artifacts=array(unknown()),
    duration_ms=integer().null(),
    exit_code=integer().null(),
    start_mode=string().null(),
    timeout_seconds=integer().null(),
    backoff_limit=integer().null(),
    trigger_kind=enum(*TRIGGER_KINDS).null(),
    trigger_id=string().null(),
    created_by=string().null(),
    updated_at=string(),
    created_at=string(),
    started_at=string().null(),
    completed_at=string().null(),
)

CREATE_RUN_RESPONSE = obj(accepted=boolean(), duplicate=boolean().opt(), run=RUN)
CANCEL_RUN_RESPONSE = obj(cancelled=boolean(), run=RUN)
RUN_EVENT = obj(event_id=number(), event_type=string(), payload=unknown(), created_at=string())
PAGE_INFO = obj(
    self=string().null(), first=literal_null(), next=string().null(), prev=string().null()
)
RUN_EVENT_LIST = obj(data=array(RUN_EVENT), page_info=PAGE_INFO)
RUN_LIST = obj(data=array(RUN), page_info=PAGE_INFO)


# --- The checker --------------------------------------------------------------------------------


def _type_problem(value: Any, t: T) -> str | None:
    kind = t.kind
    if kind == "unknown":
        return None
    if kind == "null":
        return None if value is None else f"must be null, got {value!r}"
    if kind == "string":
        return None if isinstance(value, str) else f"must be a string, got {value!r}"
    if kind in ("int", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {value!r}"
        if kind == "int" and not float(value).is_integer():
            return f"must be an integer, got {value!r}"
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else f"must be a boolean, got {value!r}"
    if kind == "enum":
        return None if value in t.values else f"must be one of {list(t.values)}, got {value!r}"
    if kind == "array":
        return None if isinstance(value, list) else f"must be an array, got {value!r}"
    if kind == "object":
        return None if isinstance(value, dict) else f"must be an object, got {value!r}"
    raise AssertionError(kind)


def problems(value: Any, t: T, *, path: str = "$", closed: bool = True) -> list[str]:
    """Every way `value` breaks `t`, as "path: rule" strings (empty when it conforms).

    `closed` also refuses keys the schema does not declare (Studio's rule, stricter than zod)."""
    if value is None:
        return [] if t.nullable or t.kind in ("null", "unknown") else [f"{path}: must not be null"]
    problem = _type_problem(value, t)
    if problem:
        return [f"{path}: {problem}"]
    found: list[str] = []
    if t.kind == "array":
        for i, item in enumerate(value):
            found += problems(item, t.items, path=f"{path}[{i}]", closed=closed)
    elif t.kind == "object":
        for key, field_type in t.fields.items():
            if key not in value:
                if not field_type.optional and field_type.kind != "unknown":
                    found.append(f"{path}.{key}: is missing")
                elif closed and not field_type.optional:
                    found.append(f"{path}.{key}: is missing (Studio sends every key)")
                continue
            found += problems(value[key], field_type, path=f"{path}.{key}", closed=closed)
        if closed:
            found += [f"{path}.{key}: is not in the schema" for key in value if key not in t.fields]
    return found
