"""File schedules under schedules/: synced into the database, read-only there, conflicts shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runs.models import Project, Schedule
from runs.schedules import load_schedule_file, store
from runs.schedules.sync import sync_files

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def schedules_dir(tmp_path, settings, project):
    settings.STUDIO_SCHEDULES_DIR = tmp_path / "schedules"
    settings.STUDIO_SCHEDULES_DIR.mkdir()
    return settings.STUDIO_SCHEDULES_DIR


def write(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("from runs.schedules import schedule\n\n" + body)
    # A distinct mtime each write, so a rewrite within the same tick is noticed.
    stamp = getattr(write, "stamp", 1_700_000_000_000_000_000) + 1_000_000_000
    write.stamp = stamp
    os.utime(path, ns=(stamp, stamp))


NIGHTLY = (
    'schedule(cron="0 2 * * *", target="task:sync-data", project="acme", input={"limit": 5})\n'
)


def test_a_file_is_added_changed_and_removed(schedules_dir):
    write(schedules_dir / "reports" / "nightly.py", NIGHTLY)
    report = sync_files()
    assert report.added == ["reports-nightly"] and report.errors == []
    schedule = Schedule.objects.get(slug="reports-nightly")
    assert schedule.source == "file" and schedule.input == {"limit": 5}
    assert schedule.source_path.endswith("schedules/reports/nightly.py")

    assert sync_files().added == []  # nothing changed, nothing done
    write(schedules_dir / "reports" / "nightly.py", NIGHTLY.replace("0 2", "30 3"))
    assert sync_files().changed == ["reports-nightly"]
    assert Schedule.objects.get(slug="reports-nightly").cron == "30 3 * * *"

    (schedules_dir / "reports" / "nightly.py").unlink()
    assert sync_files().removed == ["reports-nightly"]
    assert not Schedule.objects.exists()


def test_a_broken_file_keeps_its_schedule_flagged(schedules_dir):
    write(schedules_dir / "nightly.py", NIGHTLY)
    sync_files()
    write(schedules_dir / "nightly.py", NIGHTLY.replace('"0 2 * * *"', '"0 99 * * *"'))
    report = sync_files()
    assert len(report.errors) == 1 and "hour field '99'" in report.errors[0].message
    schedule = Schedule.objects.get(slug="nightly")
    assert schedule.cron == "0 2 * * *" and "hour field" in schedule.file_error
    write(schedules_dir / "nightly.py", NIGHTLY)
    sync_files()
    assert Schedule.objects.get(slug="nightly").file_error == ""


def test_a_file_whose_id_an_api_schedule_holds_is_a_conflict(schedules_dir, project):
    store.create(project, {"id": "nightly", "target": "task:sync-data", "cron": "@hourly"})
    write(schedules_dir / "nightly.py", NIGHTLY)
    report = sync_files()
    assert "already used by a schedule created through the API" in report.errors[0].message
    assert Schedule.objects.get(slug="nightly").source == "api"


def test_a_file_naming_a_missing_project_or_bad_target_is_an_error(schedules_dir):
    write(schedules_dir / "a.py", NIGHTLY.replace('"acme"', '"nowhere"'))
    write(schedules_dir / "b.py", NIGHTLY.replace("sync-data", "long-running"))
    write(schedules_dir / "c.py", "x = 1\n")
    errors = {Path(e.path).name: e.message for e in sync_files().errors}
    assert "'nowhere' does not exist" in errors["a.py"]
    assert "not schedulable" in errors["b.py"]
    assert "declares no schedule" in errors["c.py"]
    assert not Schedule.objects.exists()


def test_a_file_schedule_cannot_be_changed_or_deleted_but_can_be_paused(schedules_dir):
    write(schedules_dir / "nightly.py", NIGHTLY)
    sync_files()
    schedule = Schedule.objects.get()
    for action in (lambda: store.update(schedule, {"name": "x"}), lambda: store.delete(schedule)):
        with pytest.raises(store.ScheduleError) as caught:
            action()
        assert (caught.value.status, caught.value.code) == (409, "file_schedule")
    store.pause(schedule, "holiday")
    # A later sync keeps the pause: it lives in the database, not in the file.
    write(schedules_dir / "nightly.py", NIGHTLY.replace("0 2", "0 4"))
    sync_files()
    schedule.refresh_from_db()
    assert schedule.enabled is False and schedule.pause_note == "holiday"
    assert schedule.cron == "0 4 * * *"
    assert store.resume(schedule).enabled is True


def test_the_shipped_example_loads():
    data = load_schedule_file(ROOT / "schedules" / "nightly-sync.py", "nightly-sync")
    assert data["project"] == "default" and data["target"] == "task:sync-data"
    assert data["cron"] == "0 2 * * *" and data["timezone"] == "Europe/Berlin"


def test_the_shipped_example_syncs_into_the_default_project(settings):
    Project.objects.create(slug="default", name="Default")
    settings.STUDIO_SCHEDULES_DIR = ROOT / "schedules"
    assert sync_files(force=True).added == ["nightly-sync"]


def test_the_schedule_dsl_and_loader_import_nothing_from_django():
    code = (
        "import sys; from runs.schedules import schedule, load_schedule_file;"
        f"d = load_schedule_file({str(ROOT / 'schedules' / 'nightly-sync.py')!r}, 'nightly-sync');"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'django');"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
