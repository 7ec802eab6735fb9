"""`python -m runs.process.discover <kind> <root>`: import definition files in a sandbox and
print what they define, as JSON. No Django here: a file importing Django fails to load.

stdin   {"policy": {...sandbox.Policy...}, "files": [[path, id], ...]}
stdout  {"results": {path: {"data": {...}} or {"error": "why it failed to load"}},
         "sandboxed": true|false}

Each file is imported in a fork of its own, so one file's module-level code cannot change
what another defines, and a file that hangs or kills its process fails alone.

Kinds: a loader per kind, `loader(path, id, source) -> JSON-able dict`, raising ValueError with
a readable reason. Register one with `@register("workflows")` in a Django-free module imported
below.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Every loader is imported here, before the process sandboxes itself: inside the sandbox the
# code's own folder may be hidden (a checkout under /tmp sits under the private /tmp). So is
# jsonschema, which checking a definition's schemas needs and the fork server leaves out.
from jsonschema import Draft202012Validator  # noqa: F401

from ..definitions import definition_to_data, load_task_file
from ..schedules import load_schedule_file
from ..webhook_files import load_webhook_file
from ..workflows.loader import load_workflow_file
from . import sandbox

FILE_TIMEOUT = 10.0  # seconds one file may take to import
# Taken before any file is imported: a file that monkeypatches json spoils only its own answer.
_dumps = json.dumps

Loader = Callable[[Path, str, bytes], dict]
LOADERS: dict[str, Loader] = {}


def register(kind: str) -> Callable[[Loader], Loader]:
    def add(loader: Loader) -> Loader:
        LOADERS[kind] = loader
        return loader

    return add


@register("tasks")
def load_task(path: Path, task_id: str, source: bytes) -> dict:
    return definition_to_data(load_task_file(path, task_id, source))


@register("workflows")
def load_workflow(path: Path, workflow_id: str, source: bytes) -> dict:
    return load_workflow_file(path, workflow_id, source)


@register("schedules")
def load_schedule(path: Path, schedule_id: str, source: bytes) -> dict:
    return load_schedule_file(path, schedule_id, source)


@register("webhooks")
def load_webhook(path: Path, webhook_id: str, source: bytes) -> dict:
    return load_webhook_file(path, webhook_id, source)


def _load_one(loader: Loader, path: Path, item_id: str, source: bytes) -> dict:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the fork that imports one file
        os.close(r)
        try:
            try:
                message = {"data": loader(path, item_id, source)}
            except ValueError as exc:
                message = {"error": str(exc)}
            try:
                text = _dumps(message, allow_nan=False)
            except (TypeError, ValueError) as exc:
                text = _dumps({"error": f"its definition is not JSON data: {exc}"})
            view = memoryview(text.encode())
            while view:
                view = view[os.write(w, view) :]
        finally:
            os._exit(0)
    os.close(w)
    chunks: list[bytes] = []
    deadline = time.monotonic() + FILE_TIMEOUT
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([r], [], [], left)[0]:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"error": f"importing it took longer than {FILE_TIMEOUT:g} s"}
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        code = os.waitstatus_to_exitcode(status)
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        return {"error": f"importing it ended its process ({how})"}


def main(kind: str, root: str) -> int:
    request = json.load(sys.stdin)
    policy = sandbox.Policy(**request["policy"])
    loader = LOADERS[kind]
    files = [(Path(p), i) for p, i in request["files"]]
    results: dict[str, dict] = {}
    sources: dict[Path, bytes] = {}
    for path, _ in files:
        try:
            sources[path] = path.read_bytes()  # before the sandbox: its user may not read them
        except OSError as exc:
            results[str(path)] = {"error": f"cannot be read: {exc}"}
    sandboxed = False
    refused = sandbox.probe(policy) if policy.mode != "off" else None
    if refused is not None and policy.mode != "required":
        print(f"WARNING: discovery runs without a sandbox: {refused}", file=sys.stderr)
    elif policy.mode != "off":
        try:
            if refused is not None:
                raise sandbox.SandboxError(0, refused)
            sandbox.isolate(policy, dict(policy.limits), network=False)
            sandboxed = True
        except sandbox.SandboxError as exc:
            # Required, or failing half-way (in PID 1 of the new namespace): report no file
            # rather than import one in a process that is not sandboxed.
            why = f"discovery could not be sandboxed: {exc}"
            print(why, file=sys.stderr)
            for path, _ in files:
                results.setdefault(str(path), {"error": why})
            sys.stdout.write(json.dumps({"results": results, "sandboxed": False}))
            return 0
    sandbox.block_django()
    for path, item_id in files:
        if path in sources:
            results[str(path)] = _load_one(loader, path, item_id, sources[path])
    sys.stdout.write(json.dumps({"results": results, "sandboxed": sandboxed}))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
