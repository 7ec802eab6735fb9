"""A burst: many schedules due in the same second, fired as one batch with a few statements."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.models import Run, RunEvent, Schedule, ScheduleOccurrence
from runs.schedules import engine

from .conftest import ledger

pytestmark = pytest.mark.django_db

SLOT = datetime(2025, 6, 1, 2, tzinfo=UTC)


def due_together(clock, make_schedule, count: int, **fields) -> list[Schedule]:
    clock.at("2025-06-01T01:00Z")
    made = [
        make_schedule(f"once-{i}", run_at="2025-06-01T02:00:00Z", **fields) for i in range(count)
    ]
    clock.at("2025-06-01T02:00:00.200Z")
    return made


def test_a_burst_fires_each_schedule_once_in_a_few_statements(
    clock, make_schedule, settings, enqueued, django_capture_on_commit_callbacks
):
    settings.STUDIO_SCHEDULER_BATCH = 100
    schedules = due_together(clock, make_schedule, 40, input={"limit": 3})

    with (
        django_capture_on_commit_callbacks(execute=True),
        CaptureQueriesContext(connection) as queries,
    ):
        result = clock.tick()

    assert len(result.fired) == 40 and result.schedules == 40
    # One at a time it took 8 statements per schedule. SQLite still saves each schedule
    # alone (its batches are short); PostgreSQL updates them all in one statement.
    bound = 20 if connection.vendor == "postgresql" else 20 + 40
    assert len(queries) <= bound, [q["sql"][:120] for q in queries]
    assert sorted(enqueued) == sorted(result.fired)
    for schedule in schedules:
        schedule.refresh_from_db()
        run = Run.objects.get(schedule_id=schedule.slug)
        assert run.status == "pending" and run.trigger_kind == "schedule"
        assert run.input == {"limit": 3, "only_active": True}
        assert run.metadata["scheduled_for"] == "2025-06-01T02:00:00Z"
        assert run.created_by == f"schedule:{schedule.slug}"
        assert list(RunEvent.objects.filter(run=run).values_list("event_type", flat=True)) == [
            "run.created"
        ]
        assert schedule.occurrences.get().run_id == run.pk
        assert ledger(schedule) == [("2025-06-01T02:00", "fired", 1)]
        assert schedule.run_count == 1 and schedule.last_run_id == run.pk
        assert schedule.is_done and schedule.done_reason == "fired its one time"
        assert schedule.next_fire_at is None and schedule.fire_error == ""
    assert clock.tick().fired == []


def test_an_input_that_no_longer_fits_fails_alone_in_a_burst(clock, make_schedule, settings):
    settings.STUDIO_SCHEDULER_BATCH = 100
    schedules = due_together(clock, make_schedule, 5)
    broken = schedules[2]
    Schedule.objects.filter(pk=broken.pk).update(input={"limit": "many"})

    assert len(clock.tick().fired) == 4

    broken.refresh_from_db()
    occ = broken.occurrences.get()
    assert occ.outcome == ScheduleOccurrence.Outcome.FAILED_TO_FIRE and occ.run_id is None
    assert "input.limit" in occ.reason and "input.limit" in broken.fire_error
    assert broken.is_done  # its one time is spent, not retried every tick
    assert not Run.objects.filter(schedule_id=broken.slug).exists()
    for schedule in schedules[:2] + schedules[3:]:
        assert ledger(schedule) == [("2025-06-01T02:00", "fired", 1)]


def test_a_slot_in_the_ledger_already_does_not_stop_the_rest_of_the_burst(
    clock, make_schedule, settings
):
    """The bulk ledger insert fails on the unique key: nothing of it is kept, and the batch is
    fired one at a time, where the recorded slot is skipped."""
    settings.STUDIO_SCHEDULER_BATCH = 100
    schedules = due_together(clock, make_schedule, 6)
    stale = schedules[4]
    ScheduleOccurrence.objects.create(schedule=stale, slot=SLOT, outcome="fired", run_id="r-old")

    assert len(clock.tick().fired) == 5

    assert not Run.objects.filter(schedule_id=stale.slug).exists()
    assert stale.occurrences.get().run_id == "r-old"
    for schedule in schedules:
        schedule.refresh_from_db()
        assert schedule.next_fire_at is None  # moved past the slot, not picked every tick
    assert Run.objects.count() == 5
    assert sorted(Run.objects.values_list("schedule_id", flat=True)) == sorted(
        s.slug for s in schedules if s is not stale
    )
    assert clock.tick().fired == []


def test_forbid_in_a_burst_sees_the_run_it_just_fired(clock, make_schedule):
    """catch_up all with Forbid: the first missed slot fires, the next ones see that run as
    active although it is not stored yet, as they do one schedule at a time."""
    clock.at("2025-06-01T00:30Z")
    schedule = make_schedule(
        "hourly", cron="0 * * * *", concurrency_policy="Forbid", catch_up="all"
    )
    clock.at("2025-06-01T03:00:01Z")
    (fired,) = clock.tick().fired
    assert [o for _, o, _ in ledger(schedule)] == ["fired", "skipped_overlap", "skipped_overlap"]
    reasons = set(schedule.occurrences.exclude(outcome="fired").values_list("reason", flat=True))
    assert reasons == {f"Forbid: run {fired} is still pending"}


def test_replace_in_a_burst_cancels_and_fires_beside_the_others(clock, make_schedule, settings):
    settings.STUDIO_SCHEDULER_BATCH = 100
    clock.at("2025-06-01T00:30Z")
    replace = make_schedule("hourly", cron="0 * * * *", concurrency_policy="Replace")
    others = [make_schedule(f"other-{i}", cron="0 * * * *") for i in range(3)]
    clock.at("2025-06-01T01:00:01Z")
    (first,) = [r for r in clock.tick().fired if Run.objects.get(pk=r).schedule_id == "hourly"]
    clock.at("2025-06-01T02:00:01Z")
    result = clock.tick()
    assert len(result.fired) == 4
    assert Run.objects.get(pk=first).status == "cancelled"
    assert Run.objects.filter(schedule_id="hourly", status="pending").count() == 1
    for schedule in [replace, *others]:
        assert [o for _, o, _ in ledger(schedule)] == ["fired", "fired"]


def test_an_unexpected_error_in_the_bulk_write_fires_the_batch_one_at_a_time(
    clock, make_schedule, settings, monkeypatch
):
    settings.STUDIO_SCHEDULER_BATCH = 100
    schedules = due_together(clock, make_schedule, 3)

    def explode(*args, **kwargs):
        raise RuntimeError("bulk write failed")

    monkeypatch.setattr(engine, "_save_bookkeeping", explode)
    assert len(clock.tick().fired) == 3
    for schedule in schedules:
        assert ledger(schedule) == [("2025-06-01T02:00", "fired", 1)]
    assert Run.objects.count() == 3
    assert RunEvent.objects.filter(event_type="run.created").count() == 3


def test_a_workflow_target_in_a_burst_fires_on_its_own_beside_the_tasks(
    clock, make_schedule, settings
):
    settings.STUDIO_SCHEDULER_BATCH = 100
    tasks = due_together(clock, make_schedule, 3)
    clock.at("2025-06-01T01:00Z")
    flow = make_schedule("flow", target="workflow:regional-report", run_at="2025-06-01T02:00:00Z")
    clock.at("2025-06-01T02:00:00.200Z")

    assert len(clock.tick().fired) == 4

    # (A workflow run carries the schedule as trigger_id; create_run drops schedule_id for it.)
    run = Run.objects.get(trigger_kind="schedule", trigger_id="flow")
    assert run.kind == Run.Kind.WORKFLOW and run.target == "workflow:regional-report"
    for schedule in [*tasks, flow]:
        assert ledger(schedule) == [("2025-06-01T02:00", "fired", 1)]
