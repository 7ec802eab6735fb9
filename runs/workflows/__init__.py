"""What a workflow file imports: the `@workflow` decorator and the graph builder `wf`.

A workflow file declares a graph; it never runs user code when the workflow runs. The decorated
function runs once per discovery with a builder, and what it builds is stored as JSON: steps,
their options, and references (`wf.input()`, `step.output()`, `wf.item()`) kept as data for the
orchestrator to evaluate. Nothing here imports Django: discovery may run in a sandboxed process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .graph import (
    STEP_KINDS,
    TRIGGER_RULES,
    WorkflowBuildError,
    check_graph,
    is_ref,
    make_ref,
)

__all__ = [
    "workflow",
    "WorkflowBuilder",
    "StepHandle",
    "Ref",
    "WorkflowBuildError",
    "STEP_KINDS",
    "TRIGGER_RULES",
]

MARKER = "__studio_workflow__"

OPTION_NAMES = {
    "name",
    "description",
    "input_schema",
    "output_schema",
    "schedulable",
    "timeout_seconds",
    "concurrency_limit",
}


@dataclass(frozen=True)
class WorkflowSpec:
    """What `@workflow` attaches to the build function; the id is only known at discovery."""

    build: Callable[..., Any]
    options: dict


def workflow(fn: Callable | None = None, /, **options: Any):
    """Mark `build(wf)` as this file's workflow. Usable as `@workflow` or `@workflow(name=...)`."""
    unknown = set(options) - OPTION_NAMES
    if unknown:
        raise TypeError(
            f"workflow() got unknown option(s): {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(OPTION_NAMES))}"
        )

    def mark(func: Callable) -> Callable:
        if not callable(func):
            raise TypeError("@workflow must decorate a function")
        setattr(func, MARKER, WorkflowSpec(build=func, options=options))
        return func

    return mark(fn) if fn is not None else mark


class Ref:
    """A reference evaluated at run time: the workflow's input, a step's output, or a map item."""

    __slots__ = ("source", "step", "path")

    def __init__(self, source: str, step: str | None = None, path: str | None = None):
        if path is not None and (not isinstance(path, str) or not path):
            raise WorkflowBuildError(f"a reference path must be a dotted string, got {path!r}")
        self.source = source
        self.step = step
        self.path = path

    def to_json(self) -> dict:
        return make_ref(self.source, step=self.step, path=self.path)

    def __repr__(self) -> str:
        where = f"{self.step}." if self.step else ""
        return f"<ref {self.source} {where}{self.path or ''}>"

    def __bool__(self) -> bool:
        # `if step.output():` inside a build function would silently pick a branch at discovery
        raise WorkflowBuildError(
            "a reference has no value while the graph is built; branch with when=/unless= "
            "or a task step that returns a boolean"
        )


class StepHandle:
    """What `wf.<kind>(...)` returns: pass it in `after=[...]`, or reference its output."""

    def __init__(self, step_id: str, kind: str):
        self.id = step_id
        self.kind = kind

    def output(self, path: str | None = None) -> Ref:
        return Ref("output", step=self.id, path=path)

    def __repr__(self) -> str:
        return f"<step {self.id} ({self.kind})>"


def _freeze(value: Any, where: str, *, allow_item: bool) -> Any:
    """`value` as JSON with references as `{"$ref": ...}` dicts; a build error if not JSON."""
    if isinstance(value, Ref):
        if value.source == "item" and not allow_item:
            raise WorkflowBuildError(
                f"{where}: wf.item() is only meaningful in a map's input/config"
            )
        return value.to_json()
    if isinstance(value, StepHandle):
        return value.output().to_json()
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise WorkflowBuildError(f"{where}: keys must be strings, got {k!r}")
            if k == "$ref":
                raise WorkflowBuildError(f"{where}: the key '$ref' is reserved for references")
            out[k] = _freeze(v, f"{where}.{k}", allow_item=allow_item)
        return out
    if isinstance(value, list | tuple):
        return [_freeze(v, f"{where}[{i}]", allow_item=allow_item) for i, v in enumerate(value)]
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise WorkflowBuildError(f"{where}: {value} is not JSON")
        return value
    raise WorkflowBuildError(f"{where}: {type(value).__name__} is not JSON")


def _positive(value: Any, name: str, step_id: str, *, zero: bool = False) -> int | None:
    if value is None:
        return None
    low = 0 if zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise WorkflowBuildError(
            f"step {step_id!r}: {name} must be an integer of at least {low}, got {value!r}"
        )
    return value


class WorkflowBuilder:
    """The `wf` a build function receives. Each method adds one step and returns its handle."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self._ids: set[str] = set()

    # --- references -------------------------------------------------------------------------

    def input(self, path: str | None = None) -> Ref:
        return Ref("input", path=path)

    def item(self, path: str | None = None) -> Ref:
        return Ref("item", path=path)

    # --- step kinds ---------------------------------------------------------------------------

    def task(self, step_id: str, target: str, input=None, config=None, **options) -> StepHandle:
        step = self._step(step_id, "task", options)
        step["target"] = _task_target(target, step_id)
        step["input"] = _freeze(input or {}, f"{step_id}.input", allow_item=False)
        step["config"] = _freeze(config or {}, f"{step_id}.config", allow_item=False)
        return self._add(step)

    def map(
        self,
        step_id: str,
        target: str,
        items,
        input=None,
        config=None,
        concurrency: int | None = None,
        **options,
    ) -> StepHandle:
        step = self._step(step_id, "map", options)
        step["target"] = _task_target(target, step_id)
        if items is None:
            raise WorkflowBuildError(f"step {step_id!r}: map needs items")
        step["items"] = _freeze(items, f"{step_id}.items", allow_item=False)
        if not is_ref(step["items"]) and not isinstance(step["items"], list):
            raise WorkflowBuildError(f"step {step_id!r}: items must be a list or a reference")
        step["input"] = _freeze(input or {}, f"{step_id}.input", allow_item=True)
        step["config"] = _freeze(config or {}, f"{step_id}.config", allow_item=True)
        step["concurrency"] = _positive(concurrency, "concurrency", step_id)
        return self._add(step)

    def workflow(self, step_id: str, target: str, input=None, **options) -> StepHandle:
        step = self._step(step_id, "workflow", options)
        if not isinstance(target, str) or not target.removeprefix("workflow:"):
            raise WorkflowBuildError(f"step {step_id!r}: target must be a workflow id")
        step["target"] = f"workflow:{target.removeprefix('workflow:')}"
        step["input"] = _freeze(input or {}, f"{step_id}.input", allow_item=False)
        return self._add(step)

    def sleep(self, step_id: str, seconds=None, until=None, **options) -> StepHandle:
        step = self._step(step_id, "sleep", options)
        if (seconds is None) == (until is None):
            raise WorkflowBuildError(f"step {step_id!r}: sleep takes exactly one of seconds, until")
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0
        ):
            raise WorkflowBuildError(f"step {step_id!r}: seconds must be a number >= 0")
        step["seconds"] = seconds
        step["until"] = _freeze(until, f"{step_id}.until", allow_item=False)
        if step["until"] is not None and not isinstance(step["until"], str | dict):
            raise WorkflowBuildError(
                f"step {step_id!r}: until must be an ISO date-time or a reference"
            )
        return self._add(step)

    def approval(self, step_id: str, message: str, timeout_seconds=None, **options) -> StepHandle:
        step = self._step(step_id, "approval", {**options, "timeout_seconds": timeout_seconds})
        if not isinstance(message, str) or not message:
            raise WorkflowBuildError(f"step {step_id!r}: message must be a non-empty string")
        step["message"] = message
        return self._add(step)

    def wait_for_event(self, step_id: str, event: str, timeout_seconds=None, **options):
        step = self._step(
            step_id, "wait_for_event", {**options, "timeout_seconds": timeout_seconds}
        )
        if not isinstance(event, str) or not event:
            raise WorkflowBuildError(f"step {step_id!r}: event must be a non-empty string")
        step["event"] = event
        return self._add(step)

    # --- common options -----------------------------------------------------------------------

    _COMMON = {
        "after",
        "when",
        "unless",
        "retries",
        "timeout_seconds",
        "trigger_rule",
        "continue_on_failure",
        "name",
    }

    def _step(self, step_id: str, kind: str, options: dict) -> dict:
        if not isinstance(step_id, str) or not step_id.strip():
            raise WorkflowBuildError(f"a step id must be a non-empty string, got {step_id!r}")
        if len(step_id) > 100:
            raise WorkflowBuildError(f"step id {step_id[:40]!r}... is longer than 100 characters")
        if step_id in self._ids:
            raise WorkflowBuildError(f"duplicate step id {step_id!r}")
        unknown = set(options) - self._COMMON
        if unknown:
            raise WorkflowBuildError(
                f"step {step_id!r}: unknown option(s) {', '.join(sorted(unknown))}"
            )
        after = []
        for dep in options.get("after") or []:
            if isinstance(dep, StepHandle):
                after.append(dep.id)
            elif isinstance(dep, str) and dep:
                after.append(dep)
            else:
                raise WorkflowBuildError(
                    f"step {step_id!r}: after takes step handles or step ids, got {dep!r}"
                )
        rule = options.get("trigger_rule") or "all_success"
        if rule not in TRIGGER_RULES:
            raise WorkflowBuildError(
                f"step {step_id!r}: trigger_rule must be one of {', '.join(TRIGGER_RULES)}"
            )
        name = options.get("name")
        if name is not None and not isinstance(name, str):
            raise WorkflowBuildError(f"step {step_id!r}: name must be a string")
        cof = options.get("continue_on_failure", False)
        if not isinstance(cof, bool):
            raise WorkflowBuildError(f"step {step_id!r}: continue_on_failure must be True/False")
        return {
            "id": step_id,
            "kind": kind,
            "name": name or step_id,
            "after": after,
            "when": _freeze(options.get("when"), f"{step_id}.when", allow_item=False),
            "unless": _freeze(options.get("unless"), f"{step_id}.unless", allow_item=False),
            "retries": _positive(options.get("retries"), "retries", step_id, zero=True),
            "timeout_seconds": _positive(
                options.get("timeout_seconds"), "timeout_seconds", step_id
            ),
            "trigger_rule": rule,
            "continue_on_failure": cof,
        }

    def _add(self, step: dict) -> StepHandle:
        self._ids.add(step["id"])
        self.steps.append(step)
        return StepHandle(step["id"], step["kind"])


def _task_target(target: Any, step_id: str) -> str:
    if not isinstance(target, str) or not target.removeprefix("task:"):
        raise WorkflowBuildError(f"step {step_id!r}: target must be a task id or task:<id>")
    if target.startswith("workflow:"):
        raise WorkflowBuildError(
            f"step {step_id!r}: {target} is a workflow; use wf.workflow() for sub-workflows"
        )
    return f"task:{target.removeprefix('task:')}"


def build_graph(spec: WorkflowSpec) -> dict:
    """Run the build function with a fresh builder and return the checked graph as JSON."""
    wf = WorkflowBuilder()
    try:
        returned = spec.build(wf)
    except WorkflowBuildError:
        raise
    except Exception as exc:
        raise WorkflowBuildError(f"{type(exc).__name__} while building the graph: {exc}") from None
    output = None
    if returned is not None:
        output = _freeze(returned, "output", allow_item=False)
    graph = {"steps": wf.steps, "output": output}
    return check_graph(graph)
