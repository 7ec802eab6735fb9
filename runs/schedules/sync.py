"""File schedules into the database: one file under STUDIO_SCHEDULES_DIR, one stored schedule.

A sync adds schedules for new files, changes those whose file changed, and removes those whose
file is gone. A file that fails to load keeps its stored schedule (and its ledger) with the
error on it; only removing the file removes the schedule. A file whose id is already taken by a
schedule made through the API in that project is a conflict, reported as a discovery error.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..definitions import DiscoveryError, iter_task_files
from ..models import Project, Schedule
from . import schedule_id_for
from .store import MODEL_FIELDS, ScheduleError, check_target_and_input, clean, create, first_fire

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[DiscoveryError] = field(default_factory=list)


_lock = threading.Lock()
_last: dict[Path, tuple[tuple, float, SyncReport]] = {}
# Even with unchanged files, look again now and then: the database may have changed under us
# (a conflicting API schedule deleted, a file schedule removed by hand).
RESYNC_SECONDS = 30.0


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def sync_files(root: Path | None = None, *, force: bool = False) -> SyncReport:
    """Bring the database in line with the schedule files. Cheap when nothing changed: the
    files' sizes and times are compared with the last sync in this process first."""
    root = Path(root or settings.STUDIO_SCHEDULES_DIR).resolve()
    files = list(iter_task_files(root))
    stamps = []
    for path in files:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        stamps.append((str(path), st.st_mtime_ns, st.st_size))
    signature = tuple(stamps)
    with _lock:
        cached = _last.get(root)
        if not force and cached and cached[0] == signature and time.monotonic() < cached[1]:
            return SyncReport(errors=cached[2].errors)
        report = _sync(root, [Path(p) for p, _, _ in stamps])
        _last[root] = (signature, time.monotonic() + RESYNC_SECONDS, report)
        return report


def _sync(root: Path, files: list[Path]) -> SyncReport:
    # Schedule files are user code: imported in the sandboxed discovery process, as task files.
    from ..sandboxing import load_sandboxed

    items = [(path, schedule_id_for(path, root)) for path in files]
    results = load_sandboxed("schedules", root, items) if items else {}
    loaded = []
    for path, schedule_id in items:
        data = results.get(path, "not loaded")
        if isinstance(data, str):
            loaded.append(LoadedFile(_display(path, root), schedule_id, error=data))
        else:
            loaded.append(LoadedFile(_display(path, root), schedule_id, data))
    return apply_loaded(loaded)


@dataclass(frozen=True)
class LoadedFile:
    """One schedule file after loading: its data (load_schedule_file's dict) or why not."""

    path: str  # as shown to people, e.g. "schedules/nightly-sync.py"; the stored source_path
    schedule_id: str
    data: dict | None = None
    error: str = ""


def apply_loaded(loaded: list[LoadedFile]) -> SyncReport:
    """Store the outcome of loading every schedule file. Loading can happen elsewhere (a
    sandboxed discovery process calls load_schedule_file); this part is the database's."""
    report = SyncReport()
    for item in loaded:
        message = item.error
        if not message:
            try:
                outcome = _store(item.data, item.path)
            except ScheduleError as exc:
                message = exc.message
            else:
                if outcome:
                    getattr(report, outcome).append(item.schedule_id)
                continue
        report.errors.append(DiscoveryError(path=item.path, message=message))
        # Keep what was stored from this file, flagged with why it can no longer be used.
        Schedule.objects.filter(source=Schedule.Source.FILE, source_path=item.path).update(
            file_error=message[:2000]
        )
    seen = {item.path for item in loaded}
    gone = Schedule.objects.filter(source=Schedule.Source.FILE).exclude(source_path__in=seen)
    report.removed += list(gone.values_list("slug", flat=True))
    gone.delete()
    return report


def _store(data: dict, shown: str) -> str | None:
    """Create or update the schedule of one loaded file; 'added', 'changed' or None."""
    data = dict(data)
    slug = data.pop("project")
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise ScheduleError(f"project {slug!r} does not exist")
    existing = Schedule.objects.filter(project=project, slug=data["id"]).first()
    if existing is not None and not existing.is_file:
        raise ScheduleError(
            f"schedule id {data['id']!r} is already used by a schedule created through the "
            f"API in project {slug!r}: rename the file or delete that schedule"
        )
    if existing is not None and existing.source_path != shown:
        raise ScheduleError(
            f"schedule id {data['id']!r} is already defined by {existing.source_path}"
        )
    # Pausing is allowed on file schedules and lives in the database, not in the file.
    enabled_in_file = data.pop("enabled", True)
    if existing is None:
        # A file schedule may still be in the past (a run_at that went by): it is then done.
        try:
            create(project, {**data, "enabled": enabled_in_file}, source="file", source_path=shown)
        except ScheduleError as exc:
            if (
                exc.status == 409
                and Schedule.objects.filter(
                    project=project, slug=data["id"], source=Schedule.Source.FILE, source_path=shown
                ).exists()
            ):
                return None  # another process synced the same file a moment ago
            raise
        return "added"
    cleaned = clean({**data, "enabled": existing.enabled, "pause_note": existing.pause_note})
    cleaned["name"] = cleaned["name"] or cleaned["id"]
    check_target_and_input(cleaned["target"], cleaned["input"])
    keep_pause = {"enabled", "pause_note"}
    changed = [
        name
        for name in MODEL_FIELDS
        if name not in keep_pause and getattr(existing, name) != cleaned[name]
    ]
    if not changed and not existing.file_error:
        return None
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=existing.pk)
        for name in changed:
            setattr(locked, name, cleaned[name])
        locked.file_error = ""
        if {
            "cron",
            "interval_seconds",
            "run_at",
            "timezone",
            "start_at",
            "end_at",
            "max_runs",
        } & set(changed):
            first_fire(locked, timezone.now())
        locked.save()
    return "changed" if changed else None


def last_errors(root: Path | None = None) -> list[DiscoveryError]:
    """The discovery errors of the latest sync in this process (syncing first if none ran)."""
    return sync_files(root).errors
