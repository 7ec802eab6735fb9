"""File schedules: `schedule(...)` in a file under schedules/, and the loader that reads one.

    # schedules/nightly-sync.py
    from runs.schedules import schedule

    schedule(cron="0 2 * * *", timezone="Europe/Berlin", target="task:sync-data",
             input={"limit": 100}, concurrency_policy="Forbid", project="default")

Nothing here imports Django: a sandboxed discovery process can call `load_schedule_file` and
hand the resulting dict to the database side (runs.schedules.sync), which stores it.
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Any

from ..definitions import exec_definition_file
from .spec import SpecError, clean

_collecting = threading.local()

DEFAULT_PROJECT = "default"


def schedule(**fields: Any) -> dict:
    """Declare this file's schedule. Takes the schedule's API fields plus `project` (a slug,
    default "default"); the id comes from the file's path."""
    collected = getattr(_collecting, "items", None)
    if collected is not None:
        collected.append(fields)
    return fields


def load_schedule_file(path: Path | str, schedule_id: str, source: bytes | None = None) -> dict:
    """Import one schedule file by path (or run `source` as it); return its schedule as
    JSON-ready data (`project` plus the API fields, date-times as ISO strings). Raise
    ValueError saying what is wrong."""
    path = Path(path)
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    safe_id = re.sub(r"\W", "_", schedule_id)
    module_name = f"studio_schedules.{safe_id}_{digest}"
    _collecting.items = []
    try:
        exec_definition_file(path, module_name, source)
        collected = _collecting.items
    finally:
        _collecting.items = None
    if not collected:
        raise ValueError("declares no schedule: call schedule(...) from runs.schedules")
    if len(collected) > 1:
        raise ValueError(f"declares {len(collected)} schedules; a file declares exactly one")
    fields = dict(collected[0])
    project = fields.pop("project", DEFAULT_PROJECT)
    if not isinstance(project, str) or not project:
        raise ValueError("project must be a project slug")
    if "id" in fields:
        raise ValueError("id comes from the file's path; do not pass id=")
    try:
        data = clean({**fields, "id": schedule_id})
    except SpecError as exc:
        raise ValueError(str(exc)) from None
    for key in ("run_at", "start_at", "end_at"):
        if data[key] is not None:
            data[key] = data[key].isoformat()
    return {"project": project, **data}


def schedule_id_for(path: Path, root: Path) -> str:
    """`schedules/reports/nightly.py` -> `reports-nightly`, as for tasks."""
    rel = path.relative_to(root).with_suffix("")
    return "-".join(rel.parts)


__all__ = ["schedule", "load_schedule_file", "schedule_id_for", "DEFAULT_PROJECT"]
