"""Loading one workflow file: import it, build its graph, return metadata + graph as JSON.

`load_workflow_file` imports nothing from Django and returns plain JSON, so it can run in a
sandboxed discovery process and hand its answer back over a pipe. Checks that need the other
definitions (does a target exist? do sub-workflows form a cycle?) are `check_targets` and
`check_subworkflow_cycles`, run by whoever holds all definitions.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..definitions import check_schema, exec_definition_file
from . import MARKER, WorkflowSpec, build_graph
from .graph import WorkflowBuildError


def load_workflow_file(path: str | Path, workflow_id: str, source: bytes | None = None) -> dict:
    """Import one workflow file and return its definition as JSON; ValueError saying why not.

    With `source`, run those bytes as the file (the sandboxed discovery process is handed the
    bytes: its user may not be allowed to open the file itself)."""
    path = Path(path)
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    safe_id = re.sub(r"\W", "_", workflow_id)
    module_name = f"studio_workflows.{safe_id}_{digest}"
    module = exec_definition_file(path, module_name, source, keep=True)
    specs = {
        id(v): v
        for v in (getattr(obj, MARKER, None) for obj in vars(module).values())
        if isinstance(v, WorkflowSpec)
    }
    if not specs:
        raise ValueError(
            "defines no workflow: decorate its build(wf) function with @workflow "
            "from runs.workflows"
        )
    if len(specs) > 1:
        raise ValueError(f"defines {len(specs)} workflows; a file defines exactly one")
    wspec = next(iter(specs.values()))
    o = wspec.options
    for key in ("name", "description"):
        if o.get(key) is not None and not isinstance(o[key], str):
            raise ValueError(f"{key} must be a string, got {o[key]!r}")
    if not isinstance(o.get("schedulable", False), bool):
        raise ValueError(f"schedulable must be True or False, got {o['schedulable']!r}")
    check_schema(o.get("input_schema"), "input_schema")
    check_schema(o.get("output_schema"), "output_schema")
    for key in ("timeout_seconds", "concurrency_limit"):
        value = o.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    try:
        graph = build_graph(wspec)
    except WorkflowBuildError as exc:
        raise ValueError(str(exc)) from None
    return {
        "id": workflow_id,
        "name": o.get("name") or workflow_id,
        "description": o.get("description") or "",
        "input_schema": o.get("input_schema"),
        "output_schema": o.get("output_schema"),
        "schedulable": bool(o.get("schedulable", False)),
        "timeout_seconds": o.get("timeout_seconds"),
        "concurrency_limit": o.get("concurrency_limit"),
        "path": str(path),
        "graph": graph,
    }


def check_targets(definition: dict, task_ids: set[str], workflow_ids: set[str]) -> str | None:
    """The reason a step names a task or workflow that does not exist, or None."""
    for step in definition["graph"]["steps"]:
        target = step.get("target")
        if not target:
            continue
        kind, _, ident = target.partition(":")
        known = task_ids if kind == "task" else workflow_ids
        if ident not in known:
            what = "task" if kind == "task" else "workflow"
            return f"step {step['id']!r}: no {what} with id {ident!r}"
    return None


def subworkflow_cycle(workflow_id: str, definitions: dict[str, dict]) -> list[str] | None:
    """A cycle of sub-workflow steps reachable from `workflow_id` (ids in order), or None."""

    def children(wid: str) -> list[str]:
        d = definitions.get(wid)
        if d is None:
            return []
        return [
            s["target"].removeprefix("workflow:")
            for s in d["graph"]["steps"]
            if s["kind"] == "workflow"
        ]

    path: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(wid: str) -> list[str] | None:
        if wid in on_path:
            return [*path[path.index(wid) :], wid]
        if wid in done:
            return None
        path.append(wid)
        on_path.add(wid)
        for child in children(wid):
            found = visit(child)
            if found:
                return found
        path.pop()
        on_path.discard(wid)
        done.add(wid)
        return None

    return visit(workflow_id)
