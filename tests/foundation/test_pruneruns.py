"""manage.py pruneruns: retention for finished runs and their events."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from runs.models import Run, RunEvent


def make(project, status, days_ago):
    done = timezone.now() - timedelta(days=days_ago)
    run = Run.objects.create(
        project=project,
        target="task:x",
        status=status,
        completed_at=done if status in ("completed", "failed", "cancelled") else None,
    )
    RunEvent.objects.bulk_create(
        [RunEvent(run=run, event_type="log", payload={"line": str(i)}) for i in range(3)]
    )
    return run


def prune(*args) -> str:
    out = StringIO()
    call_command("pruneruns", *args, stdout=out)
    return out.getvalue()


def test_it_deletes_only_finished_runs_past_retention_with_their_events(project, other_project):
    old = [make(project, s, 40) for s in ("completed", "failed", "cancelled")]
    recent = make(project, "completed", 5)
    active = make(project, "running", 40)
    elsewhere = make(other_project, "completed", 40)

    assert "Would delete 3 run(s) and 9 event(s)" in prune(
        "--older-than-days", "30", "--project", "acme", "--dry-run"
    )
    assert Run.objects.count() == 6  # a dry run deletes nothing

    assert "Deleted 3 run(s) and 9 event(s)" in prune(
        "--older-than-days", "30", "--project", "acme"
    )
    assert not Run.objects.filter(pk__in=[r.pk for r in old]).exists()
    assert set(Run.objects.values_list("pk", flat=True)) == {recent.pk, active.pk, elsewhere.pk}
    assert RunEvent.objects.count() == 9

    assert "Deleted 1 run(s)" in prune("--older-than-days", "30")  # every project
    assert not Run.objects.filter(pk=elsewhere.pk).exists()


def test_it_refuses_a_retention_below_one_day_and_an_unknown_project(project):
    with pytest.raises(CommandError, match="at least 1"):
        prune("--older-than-days", "0")
    with pytest.raises(CommandError, match="No project 'nope'"):
        prune("--older-than-days", "30", "--project", "nope")
