"""Studio's side of the run sandbox: the policy from settings, and discovery as data.

The web and worker processes never import a definition file: `load_sandboxed` asks a sandboxed
`python -m runs.process.discover <kind> <root>` process to import the changed files (each in a
fork of its own) and print what they define as JSON. Callers cache the answer by the files'
mtime and size (TaskRegistry), so a request pays for a few stat() calls, not a process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connections

from .definitions import definition_from_data, filtered_env
from .process.sandbox import Policy

log = logging.getLogger(__name__)

DISCOVERY_TIMEOUT = 120.0
ROOT = Path(__file__).resolve().parent.parent


def policy() -> Policy:
    """The sandbox policy of this Studio: what to hide, what to bind, the default limits."""
    hide = {str(settings.VAR_DIR)}
    for alias in settings.DATABASES:
        db = connections[alias].settings_dict
        if db["ENGINE"].endswith("sqlite3") and str(db["NAME"]).startswith("/"):
            for suffix in ("", "-wal", "-shm", "-journal"):
                hide.add(str(db["NAME"]) + suffix)
    huey_file = settings.HUEY.get("filename")
    if huey_file:
        for suffix in ("", "-wal", "-shm", "-journal"):
            hide.add(str(huey_file) + suffix)
    # Local database and Redis sockets: reachable through the file system otherwise.
    hide.update(("/run/postgresql", "/var/run/postgresql", "/run/redis", "/var/run/redis"))
    definitions = [str(settings.STUDIO_TASKS_DIR)]
    for name in ("STUDIO_WORKFLOWS_DIR", "STUDIO_SCHEDULES_DIR", "STUDIO_WEBHOOKS_DIR"):
        folder = getattr(settings, name, None)
        if folder:
            definitions.append(str(folder))
    return Policy(
        mode=settings.STUDIO_SANDBOX,
        hide=sorted(hide),
        definitions=definitions,
        uid_base=settings.STUDIO_SANDBOX_UID_BASE,
        cgroups=settings.STUDIO_SANDBOX_CGROUPS,
        prepared=max(1, int(settings.STUDIO_WORKERS)),
        limits={
            "memory_mb": settings.STUDIO_RUN_MEMORY_MB,
            "cpu_seconds": settings.STUDIO_RUN_CPU_SECONDS,
            "max_processes": settings.STUDIO_RUN_MAX_PROCESSES,
            "max_file_mb": settings.STUDIO_RUN_MAX_FILE_MB,
            "disk_mb": settings.STUDIO_RUN_DISK_MB,
        },
    )


def load_sandboxed(kind: str, root: Path, items: list[tuple[Path, str]]) -> dict[Path, dict | str]:
    """Import `items` ([(path, id)]) of a definitions `kind` in a sandboxed process.

    Returns {path: JSON data of the definition, or the reason it failed to load (a str)}. A
    file that hangs, crashes its process or imports Django fails alone; if the discovery
    process itself cannot run, every file of the batch carries that reason."""
    request = {"policy": json.loads(policy().to_json()), "files": [[str(p), i] for p, i in items]}
    env = filtered_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "runs.process.discover", kind, str(root)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=DISCOVERY_TIMEOUT,
            cwd=ROOT,
            env=env,
        )
        if proc.stderr.strip():
            log.warning("discovery of %s in %s: %s", kind, root, proc.stderr.strip()[-2000:])
        answer = json.loads(proc.stdout)
        results = answer["results"]
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
        why = f"the discovery process failed: {exc}"
        if "proc" in locals() and proc.stderr:
            why += f" ({proc.stderr.strip()[-300:]})"
        return {path: why for path, _ in items}
    out: dict[Path, dict | str] = {}
    for path, _ in items:
        entry = results.get(str(path)) or {"error": "the discovery process did not report it"}
        out[path] = entry["data"] if "data" in entry else str(entry.get("error"))
    return out


def discovery_loader(kind: str, convert: Callable[[dict], object]):
    """A TaskRegistry batch loader for `kind`: sandboxed import, then `convert` of the data."""

    def load(root: Path, items: list[tuple[Path, str]]) -> dict:
        loaded = load_sandboxed(kind, root, items)
        out = {}
        for path, value in loaded.items():
            if isinstance(value, str):
                out[path] = value
                continue
            try:
                out[path] = convert(value)
            except (TypeError, ValueError) as exc:
                out[path] = f"its definition could not be read back: {exc}"
        return out

    return load


def task_loader():
    """The batch loader of task files for Studio's processes (runs/apps.py installs it)."""
    return discovery_loader("tasks", definition_from_data)
