"""Workflow discovery: the files under STUDIO_WORKFLOWS_DIR, loaded with the same rules as tasks.

Files are loaded by `runs.workflows.loader.load_workflow_file` (Django-free, JSON out) and cached
by mtime and size, so edits are picked up without a restart. Checks that need every definition
(unknown targets, sub-workflow cycles) run on each discovery, since a task may come or go.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from ..definitions import DiscoveryError, discover, iter_task_files, task_id_for
from ..workflows.graph import nodes_and_edges
from ..workflows.loader import check_targets, load_workflow_file, subworkflow_cycle


@dataclass(frozen=True)
class WorkflowDefinition:
    id: str
    name: str
    description: str
    input_schema: dict | None
    output_schema: dict | None
    schedulable: bool
    timeout_seconds: int | None
    concurrency_limit: int | None
    path: str
    graph: dict

    @property
    def target(self) -> str:
        return f"workflow:{self.id}"

    @property
    def drawing(self) -> dict:
        return nodes_and_edges(self.graph)

    @classmethod
    def from_json(cls, data: dict) -> WorkflowDefinition:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass
class WorkflowDiscovery:
    workflows: dict[str, WorkflowDefinition] = field(default_factory=dict)
    errors: list[DiscoveryError] = field(default_factory=list)

    def get(self, workflow_id: str) -> WorkflowDefinition | None:
        return self.workflows.get(workflow_id)


class WorkflowRegistry:
    def __init__(self, root: Path, *, in_process: bool = False):
        self.root = Path(root)
        self.in_process = in_process
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple[int, int], dict | str]] = {}

    def discover(self, task_ids: set[str]) -> WorkflowDiscovery:
        with self._lock:
            stamps: list[tuple[Path, tuple[int, int]]] = []
            for path in iter_task_files(self.root):
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                stamps.append((path, (st.st_mtime_ns, st.st_size)))
            changed = [
                (path, task_id_for(path, self.root))
                for path, stamp in stamps
                if (self._cache.get(path) or (None,))[0] != stamp
            ]
            fresh = self._load(changed) if changed else {}
            cache = {}
            loaded: list[tuple[Path, dict | str]] = []
            for path, stamp in stamps:
                value = fresh[path] if path in fresh else self._cache[path][1]
                cache[path] = (stamp, value)
                loaded.append((path, value))
            self._cache = cache
        result = WorkflowDiscovery()
        found: dict[str, tuple[Path, dict]] = {}
        for path, value in loaded:
            if isinstance(value, str):
                result.errors.append(DiscoveryError(self._display(path), value))
            elif value["id"] in found:
                result.errors.append(
                    DiscoveryError(
                        self._display(path),
                        f"workflow id {value['id']!r} is already defined by "
                        f"{self._display(found[value['id']][0])}",
                    )
                )
            else:
                found[value["id"]] = (path, value)
        definitions = {wid: value for wid, (_, value) in found.items()}
        for wid, (path, value) in found.items():
            problem = check_targets(value, task_ids, set(definitions))
            if problem is None:
                cycle = subworkflow_cycle(wid, definitions)
                if cycle:
                    problem = f"sub-workflow cycle: {' -> '.join(cycle)}"
            if problem:
                result.errors.append(DiscoveryError(self._display(path), problem))
            else:
                result.workflows[wid] = WorkflowDefinition.from_json(value)
        return result

    def _load(self, items: list[tuple[Path, str]]) -> dict[Path, dict | str]:
        """Workflow files are user code: their build functions run in a sandboxed process, as
        task files do (`manage.py workflow` on a developer's own machine loads in-process)."""
        if self.in_process:
            out: dict[Path, dict | str] = {}
            for path, workflow_id in items:
                try:
                    out[path] = load_workflow_file(path, workflow_id)
                except ValueError as exc:
                    out[path] = str(exc)
            return out
        from ..sandboxing import load_sandboxed

        return load_sandboxed("workflows", self.root, items)

    def _display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)


_registries: dict[tuple[Path, bool], WorkflowRegistry] = {}
_registries_lock = threading.Lock()


def discover_workflows(root: Path | None = None, *, in_process: bool = False) -> WorkflowDiscovery:
    """The workflows under `root`. Their files are imported in a sandboxed process unless
    `in_process` (the local CLI: the developer's own machine and code)."""
    root = Path(root or settings.STUDIO_WORKFLOWS_DIR).resolve()
    with _registries_lock:
        registry = _registries.setdefault(
            (root, in_process), WorkflowRegistry(root, in_process=in_process)
        )
    return registry.discover(set(discover(in_process=in_process).tasks))
