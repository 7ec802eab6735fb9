"""A workflow graph as data: references, dependency inference, checks, and evaluation.

A reference is a JSON object `{"$ref": "input"|"output"|"item", "step": <id>, "path": "a.b.0"}`
that may stand anywhere in a step's input, config, items, until, when and unless, and in the
output template. The orchestrator resolves references with `resolve()`: plain data in, plain
data out, no user code. Nothing here imports Django.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

STEP_KINDS = ("task", "map", "workflow", "sleep", "approval", "wait_for_event")
TRIGGER_RULES = ("all_success", "all_done", "none_failed", "one_failed")
REF_SOURCES = ("input", "output", "item")
# Where references may stand in a step.
REF_FIELDS = ("input", "config", "items", "until", "when", "unless")


class WorkflowBuildError(ValueError):
    """The graph cannot be built: a discovery error for the workflow's file."""


class MissingReference(LookupError):
    """A reference resolved to nothing at run time."""

    def __init__(self, ref: dict, reason: str):
        super().__init__(reason)
        self.ref = ref
        self.reason = reason

    @property
    def path(self) -> str:
        return describe_ref(self.ref)


def make_ref(source: str, *, step: str | None = None, path: str | None = None) -> dict:
    ref: dict = {"$ref": source}
    if step is not None:
        ref["step"] = step
    if path is not None:
        ref["path"] = path
    return ref


def is_ref(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("$ref") in REF_SOURCES
        and set(value) <= {"$ref", "step", "path"}
    )


def describe_ref(ref: dict) -> str:
    """`input.topic`, `research.output.ideas`, `item.name`: how a reference reads in messages."""
    base = f"{ref['step']}.output" if ref["$ref"] == "output" else ref["$ref"]
    return f"{base}.{ref['path']}" if ref.get("path") else base


def iter_refs(value: Any) -> Iterator[dict]:
    if is_ref(value):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from iter_refs(v)


def step_refs(step: dict) -> Iterator[dict]:
    for field in REF_FIELDS:
        yield from iter_refs(step.get(field))


def lookup(value: Any, path: str | None, ref: dict) -> Any:
    """Follow a dotted path (`items.0.name`) into JSON; MissingReference if it leads nowhere."""
    if not path:
        return value
    current = value
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            if -len(current) <= index < len(current):
                current = current[index]
            else:
                raise MissingReference(ref, f"index {part} is out of range")
        else:
            raise MissingReference(ref, f"{part!r} is not there")
    return current


def resolve(value: Any, *, input: Any, outputs: dict, item: Any = None, has_item=False) -> Any:
    """`value` with every reference replaced by what it names. `outputs` maps step ids to the
    outputs of steps that completed; a reference to anything else raises MissingReference."""
    if is_ref(value):
        source = value["$ref"]
        if source == "input":
            base = input
        elif source == "item":
            if not has_item:
                raise MissingReference(value, "there is no map item here")
            base = item
        else:
            if value.get("step") not in outputs:
                raise MissingReference(value, f"step {value.get('step')!r} has no output")
            base = outputs[value["step"]]
        return lookup(base, value.get("path"), value)
    if isinstance(value, dict):
        return {
            k: resolve(v, input=input, outputs=outputs, item=item, has_item=has_item)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            resolve(v, input=input, outputs=outputs, item=item, has_item=has_item) for v in value
        ]
    return value


def rule_met(rule: str, outcomes: list[str]) -> bool:
    """Whether a step with trigger rule `rule` runs, given how its dependencies ended
    (completed, failed, skipped or cancelled)."""
    if rule == "all_done":
        return True
    if rule == "none_failed":
        return not any(o in ("failed", "cancelled") for o in outcomes)
    if rule == "one_failed":
        return any(o == "failed" for o in outcomes)
    return all(o == "completed" for o in outcomes)


def check_graph(graph: dict) -> dict:
    """Infer each step's `depends_on`, refuse unknown ids and cycles, and order the steps
    topologically (declaration order among equals). Returns the graph; raises WorkflowBuildError."""
    steps = graph["steps"]
    if not steps:
        raise WorkflowBuildError("the workflow has no steps")
    by_id = {s["id"]: s for s in steps}
    for step in steps:
        deps: list[str] = []
        for dep in step.get("after") or []:
            if dep not in by_id:
                raise WorkflowBuildError(f"step {step['id']!r}: after names unknown step {dep!r}")
            if dep not in deps:
                deps.append(dep)
        for ref in step_refs(step):
            if ref["$ref"] == "output":
                dep = ref.get("step")
                if dep not in by_id:
                    raise WorkflowBuildError(
                        f"step {step['id']!r}: references the output of unknown step {dep!r}"
                    )
                if dep not in deps:
                    deps.append(dep)
        if step["id"] in deps:
            raise WorkflowBuildError(f"step {step['id']!r} depends on itself")
        step["depends_on"] = deps
    for ref in iter_refs(graph.get("output")):
        if ref["$ref"] == "output" and ref.get("step") not in by_id:
            raise WorkflowBuildError(f"the output references unknown step {ref.get('step')!r}")
    graph["steps"] = _topological(steps)
    return graph


def _topological(steps: list[dict]) -> list[dict]:
    position = {s["id"]: i for i, s in enumerate(steps)}
    by_id = {s["id"]: s for s in steps}
    remaining = {s["id"]: set(s["depends_on"]) for s in steps}
    ordered: list[dict] = []
    while remaining:
        ready = sorted((sid for sid, deps in remaining.items() if not deps), key=position.get)
        if not ready:
            raise WorkflowBuildError(f"dependency cycle: {' -> '.join(_find_cycle(remaining))}")
        for sid in ready:
            ordered.append(by_id[sid])
            del remaining[sid]
        for deps in remaining.values():
            deps.difference_update(ready)
    return ordered


def _find_cycle(remaining: dict[str, set[str]]) -> list[str]:
    start = min(remaining)
    path = [start]
    seen = {start: 0}
    current = start
    while True:
        current = sorted(d for d in remaining[current] if d in remaining)[0]
        if current in seen:
            return [*path[seen[current] :], current]
        seen[current] = len(path)
        path.append(current)


def nodes_and_edges(graph: dict) -> dict:
    """The graph as the API and the dashboard draw it."""
    return {
        "nodes": [
            {"id": s["id"], "kind": s["kind"], "target": s.get("target"), "name": s["name"]}
            for s in graph["steps"]
        ],
        "edges": [{"from": d, "to": s["id"]} for s in graph["steps"] for d in s["depends_on"]],
    }


def output_template_steps(graph: dict) -> list[str]:
    return [r["step"] for r in iter_refs(graph.get("output")) if r["$ref"] == "output"]
