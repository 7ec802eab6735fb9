"""Real worker processes racing over the same due schedules: every slot fires exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from runs.models import Run, Schedule, ScheduleOccurrence
from runs.schedules import store
from tests.workers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_three_workers_fire_every_slot_exactly_once(start_worker, project, tmp_path):
    # Small batches, so the three really interleave over the same due rows.
    workers = [
        start_worker(workers=1, STUDIO_SCHEDULES_DIR=tmp_path, STUDIO_SCHEDULER_BATCH=5)
        for _ in range(3)
    ]
    due = timezone.now() + timedelta(seconds=2)
    for i in range(40):
        store.create(
            project, {"id": f"once-{i}", "target": "task:sync-data", "run_at": due.isoformat()}
        )
    for i in range(10):
        # Three slots each, one second apart.
        store.create(
            project,
            {
                "id": f"thrice-{i}",
                "target": "task:sync-data",
                "interval_seconds": 1,
                "start_at": due.isoformat(),
                "max_runs": 3,
                # On a busy machine a worker may wake after two slots: fire both, miss none.
                "catch_up": "all",
            },
        )
    expected = 40 + 10 * 3

    wait_for(
        lambda: Run.objects.filter(trigger_kind="schedule").count() >= expected,
        timeout=60,
        message=f"{expected} scheduled runs",
    )
    # Every schedule retired: no slot is left that any worker could still fire.
    wait_for(
        lambda: not Schedule.objects.filter(done_at__isnull=True).exists(),
        timeout=30,
        message="every schedule to be done",
    )
    assert all(w.proc.poll() is None for w in workers)
    runs = list(Run.objects.filter(trigger_kind="schedule").values_list("schedule_id", "metadata"))
    per_slot = Counter((sid, meta["scheduled_for"]) for sid, meta in runs)
    assert len(runs) == expected
    assert max(per_slot.values()) == 1
    assert ScheduleOccurrence.objects.filter(outcome="fired").count() == expected
    assert ScheduleOccurrence.objects.aggregate(n=Sum("count"))["n"] == expected


def test_a_due_schedule_fires_within_about_a_second_on_an_idle_worker(start_worker, project):
    worker = start_worker(workers=1)
    slot = timezone.now() + timedelta(seconds=2)
    store.create(project, {"id": "soon", "target": "task:sync-data", "run_at": slot.isoformat()})
    run = wait_for(lambda: Run.objects.filter(schedule_id="soon").first(), 15, message="the run")
    lag = (run.created_at - slot).total_seconds()
    assert 0 <= lag < 1.5
    wait_for(
        lambda: Run.objects.get(pk=run.pk).status == "completed", 30, message="the run to finish"
    )
    # The loop does not keep a draining worker alive.
    assert worker.terminate(timeout=20) == 0
