"""manage.py schedules / schedule run, pruneruns on the ledger, and the admin for schedules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from runs.models import Run, Schedule, ScheduleOccurrence
from runs.schedules import engine, store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_files(settings, tmp_path):
    settings.STUDIO_SCHEDULES_DIR = tmp_path
    return tmp_path


def run_command(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_schedules_lists_them_and_the_file_errors(project, no_files):
    store.create(project, {"id": "nightly", "target": "task:sync-data", "cron": "@daily"})
    paused = store.create(
        project, {"id": "often", "target": "task:sync-data", "interval_seconds": 30}
    )
    store.pause(paused, "quiet week")
    (no_files / "broken.py").write_text("schedule(\n")
    out, err = run_command("schedules")
    lines = out.splitlines()
    assert lines[0].split() == [
        "PROJECT",
        "ID",
        "TARGET",
        "WHEN",
        "NEXT",
        "FIRE",
        "(UTC)",
        "ENABLED",
        "SOURCE",
    ]
    assert "nightly" in lines[1] and "cron 0 0 * * * (UTC)" in lines[1] and "yes" in lines[1]
    assert "paused: quiet week" in out and "every 30s" in out
    assert "broken.py" in err and "syntax error" in err


def test_schedule_run_runs_the_target_here_with_the_schedules_input(project, capsys):
    store.create(
        project,
        {"id": "nightly", "target": "task:sync-data", "cron": "@daily", "input": {"limit": 1}},
    )
    run_command("schedule", "run", "nightly")
    out = capsys.readouterr().out  # the task's own output goes straight to stdout
    assert json.loads(out.strip().splitlines()[-1])["synced"] == 1
    assert not Run.objects.exists()  # local: no run record, like manage.py task
    with pytest.raises(CommandError, match="No schedule 'nope'"):
        run_command("schedule", "run", "nope")


def test_pruneruns_prunes_the_ledger_too(project):
    with time_machine.travel(timezone.now() - timedelta(days=40), tick=False):
        schedule = store.create(
            project, {"id": "hourly", "target": "task:sync-data", "cron": "@hourly"}
        )
        ScheduleOccurrence.objects.create(schedule=schedule, slot=timezone.now(), outcome="missed")
    ScheduleOccurrence.objects.create(schedule=schedule, slot=timezone.now(), outcome="missed")
    out, _ = run_command("pruneruns", "--older-than-days", "30")
    assert "Deleted 1 schedule ledger row(s)" in out
    assert ScheduleOccurrence.objects.count() == 1


# --- Admin -------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def test_the_admin_lists_schedules_and_their_ledger(admin_client, project, monkeypatch):
    monkeypatch.setattr("runs.lifecycle.enqueue", lambda *a, **k: None)
    with time_machine.travel(datetime(2025, 6, 1, tzinfo=UTC), tick=False):
        schedule = store.create(
            project, {"id": "hourly", "target": "task:sync-data", "cron": "@hourly"}
        )
    with time_machine.travel(datetime(2025, 6, 1, 1, 0, 1, tzinfo=UTC), tick=False):
        engine.tick()
    page = admin_client.get(reverse("admin:runs_schedule_changelist")).content.decode()
    assert "hourly" in page and "task:sync-data" in page
    detail = admin_client.get(reverse("admin:runs_schedule_change", args=[schedule.pk]))
    assert detail.status_code == 200 and "fired" in detail.content.decode()
    ledger = admin_client.get(reverse("admin:runs_scheduleoccurrence_changelist"))
    assert ledger.status_code == 200 and "fired" in ledger.content.decode()


def test_the_admin_creates_through_the_store_and_names_bad_fields(admin_client, project):
    url = reverse("admin:runs_schedule_add")
    form = {
        "project": project.pk,
        "slug": "made-in-admin",
        "name": "",
        "description": "",
        "target": "task:sync-data",
        "input": "{}",
        "config": "{}",
        "cron": "0 25 * * *",
        "timezone": "UTC",
        "concurrency_policy": "Allow",
        "catch_up": "latest",
        "starting_deadline_seconds": "3600",
        "enabled": "on",
        "pause_note": "",
        "occurrences-TOTAL_FORMS": "0",
        "occurrences-INITIAL_FORMS": "0",
    }
    bad = admin_client.post(url, form)
    assert bad.status_code == 200 and "hour field" in bad.content.decode()
    assert not Schedule.objects.exists()
    good = admin_client.post(url, {**form, "cron": "0 5 * * *"})
    assert good.status_code == 302, good.content.decode()[:2000]
    schedule = Schedule.objects.get()
    assert schedule.slug == "made-in-admin" and schedule.next_fire_at is not None
    assert schedule.created_by == "root"


def test_a_file_schedule_is_read_only_in_the_admin(admin_client, project, no_files):
    (no_files / "from-file.py").write_text(
        "from runs.schedules import schedule\nschedule(cron='@daily', target='task:sync-data', project='acme')\n"
    )
    run_command("schedules")
    schedule = Schedule.objects.get()
    response = admin_client.post(
        reverse("admin:runs_schedule_delete", args=[schedule.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert Schedule.objects.exists()
