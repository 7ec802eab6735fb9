"""Firing with an injected clock: slots, policies, catch-up after downtime, retirement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest

from runs.models import Run, RunStatus, Schedule, ScheduleOccurrence
from runs.schedules import store

from .conftest import finish, ledger, start

pytestmark = pytest.mark.django_db


def test_it_fires_a_slot_once_with_the_schedule_on_the_run(clock, make_schedule, project):
    clock.at("2025-06-01T01:00Z")
    schedule = make_schedule(input={"limit": 5})
    assert schedule.next_fire_at == datetime(2025, 6, 1, 2, tzinfo=UTC)

    clock.at("2025-06-01T01:59:59Z")
    assert clock.tick().fired == []
    clock.at("2025-06-01T02:00:00.300Z")
    fired = clock.tick().fired
    assert len(fired) == 1
    assert clock.tick().fired == []  # same second again: nothing more

    run = Run.objects.get(pk=fired[0])
    assert run.trigger_kind == "schedule"
    assert run.schedule_id == "nightly" and run.trigger_id == "nightly"
    assert run.metadata["scheduled_for"] == "2025-06-01T02:00:00Z"
    assert run.input == {"limit": 5, "only_active": True}
    schedule.refresh_from_db()
    assert schedule.next_fire_at == datetime(2025, 6, 2, 2, tzinfo=UTC)
    assert schedule.run_count == 1 and schedule.last_run_id == run.pk
    assert ledger(schedule) == [("2025-06-01T02:00", "fired", 1)]
    assert schedule.occurrences.get().run_id == run.pk


def test_a_slot_in_the_ledger_is_never_fired_again(clock, make_schedule):
    """The unique key holds even if next_fire_at were stale (a crashed or racing worker)."""
    clock.at("2025-06-01T01:00Z")
    schedule = make_schedule()
    clock.at("2025-06-01T02:00:01Z")
    assert len(clock.tick().fired) == 1
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=datetime(2025, 6, 1, 2, tzinfo=UTC))
    assert clock.tick().fired == []
    assert Run.objects.count() == 1
    schedule.refresh_from_db()
    assert schedule.next_fire_at == datetime(2025, 6, 2, 2, tzinfo=UTC)  # moved past it


# --- Concurrency policies ---------------------------------------------------------------------


def hourly(make_schedule, policy: str):
    return make_schedule("hourly", cron="0 * * * *", concurrency_policy=policy)


def test_allow_starts_a_run_per_slot_even_when_one_is_active(clock, make_schedule):
    clock.at("2025-06-01T00:30Z")
    hourly(make_schedule, "Allow")
    clock.at("2025-06-01T01:00:01Z")
    first = clock.tick().fired
    clock.at("2025-06-01T02:00:01Z")
    second = clock.tick().fired
    assert len(first) == len(second) == 1
    assert Run.objects.filter(status=RunStatus.PENDING).count() == 2


def test_forbid_skips_a_slot_while_a_run_is_active(clock, make_schedule):
    clock.at("2025-06-01T00:30Z")
    schedule = hourly(make_schedule, "Forbid")
    clock.at("2025-06-01T01:00:01Z")
    (first,) = clock.tick().fired
    start(first)
    clock.at("2025-06-01T02:00:01Z")
    assert clock.tick().fired == []
    finish(first)
    clock.at("2025-06-01T03:00:01Z")
    assert len(clock.tick().fired) == 1
    assert ledger(schedule) == [
        ("2025-06-01T01:00", "fired", 1),
        ("2025-06-01T02:00", "skipped_overlap", 1),
        ("2025-06-01T03:00", "fired", 1),
    ]
    skipped = schedule.occurrences.get(outcome="skipped_overlap")
    assert first in skipped.reason


def test_replace_cancels_the_active_run_and_starts_the_new_one(clock, make_schedule):
    clock.at("2025-06-01T00:30Z")
    schedule = hourly(make_schedule, "Replace")
    clock.at("2025-06-01T01:00:01Z")
    (first,) = clock.tick().fired  # pending: cancelled at once
    clock.at("2025-06-01T02:00:01Z")
    (second,) = clock.tick().fired
    assert Run.objects.get(pk=first).status == RunStatus.CANCELLED
    assert "replaced" in Run.objects.get(pk=first).cancel_reason
    # A running run is asked to stop; the new run does not wait for it.
    start(second)
    clock.at("2025-06-01T03:00:01Z")
    (third,) = clock.tick().fired
    assert Run.objects.get(pk=second).cancel_requested_at is not None
    assert Run.objects.get(pk=third).status == RunStatus.PENDING
    assert [o for _, o, _ in ledger(schedule)] == ["fired", "fired", "fired"]


def test_buffer_one_starts_one_waiting_slot_when_the_active_run_ends(clock, make_schedule):
    clock.at("2025-06-01T00:30Z")
    schedule = hourly(make_schedule, "BufferOne")
    clock.at("2025-06-01T01:00:01Z")
    (first,) = clock.tick().fired
    start(first)
    clock.at("2025-06-01T02:00:01Z")
    assert clock.tick().fired == []
    clock.at("2025-06-01T03:00:01Z")
    assert clock.tick().fired == []  # at most one waiting
    assert ledger(schedule) == [
        ("2025-06-01T01:00", "fired", 1),
        ("2025-06-01T02:00", "buffered", 1),
        ("2025-06-01T03:00", "skipped_overlap", 1),
    ]
    clock.at("2025-06-01T03:10Z")
    assert clock.tick().fired == []  # still running
    finish(first)
    (buffered,) = clock.tick().fired
    run = Run.objects.get(pk=buffered)
    assert run.metadata["scheduled_for"] == "2025-06-01T02:00:00Z"
    slot = schedule.occurrences.get(slot=datetime(2025, 6, 1, 2, tzinfo=UTC))
    assert (slot.outcome, slot.run_id) == ("fired", buffered)
    assert "buffered" in slot.reason
    schedule.refresh_from_db()
    assert schedule.buffered_slot is None and schedule.run_count == 2


# --- Catch-up after downtime -------------------------------------------------------------------


def down_for_five_hours(clock, make_schedule, **fields):
    """An hourly schedule whose workers were down from 00:30 to 05:10 (slots 01..05 missed)."""
    clock.at("2025-06-01T00:30Z")
    schedule = make_schedule("hourly", cron="0 * * * *", **fields)
    clock.at("2025-06-01T05:10Z")
    return schedule, clock.tick().fired


def test_catch_up_latest_fires_the_most_recent_missed_slot(clock, make_schedule):
    schedule, fired = down_for_five_hours(clock, make_schedule)
    assert len(fired) == 1
    assert Run.objects.get(pk=fired[0]).metadata["scheduled_for"] == "2025-06-01T05:00:00Z"
    assert ledger(schedule) == [
        ("2025-06-01T01:00", "missed", 4),
        ("2025-06-01T05:00", "fired", 1),
    ]
    assert "downtime" in schedule.occurrences.get(outcome="missed").reason
    schedule.refresh_from_db()
    assert schedule.next_fire_at == datetime(2025, 6, 1, 6, tzinfo=UTC)


def test_catch_up_latest_misses_a_slot_beyond_the_starting_deadline(clock, make_schedule):
    schedule, fired = down_for_five_hours(clock, make_schedule, starting_deadline_seconds=300)
    assert fired == []
    assert ledger(schedule) == [
        ("2025-06-01T01:00", "missed", 4),
        ("2025-06-01T05:00", "missed", 1),
    ]
    assert "starting_deadline_seconds" in schedule.occurrences.get(count=1).reason


def test_catch_up_none_fires_nothing_missed(clock, make_schedule):
    schedule, fired = down_for_five_hours(clock, make_schedule, catch_up="none")
    assert fired == []
    assert ledger(schedule) == [
        ("2025-06-01T01:00", "missed", 4),
        ("2025-06-01T05:00", "missed", 1),
    ]
    # Back on time, the next slot fires.
    clock.at("2025-06-01T06:00:00.500Z")
    assert len(clock.tick().fired) == 1


def test_catch_up_all_fires_every_missed_slot(clock, make_schedule):
    schedule, fired = down_for_five_hours(clock, make_schedule, catch_up="all")
    slots = sorted(Run.objects.get(pk=r).metadata["scheduled_for"] for r in fired)
    assert slots == [f"2025-06-01T0{h}:00:00Z" for h in range(1, 6)]
    assert [o for _, o, _ in ledger(schedule)] == ["fired"] * 5


def test_catch_up_all_is_capped(clock, make_schedule, settings):
    settings.STUDIO_SCHEDULE_CATCH_UP_MAX = 3
    schedule, fired = down_for_five_hours(clock, make_schedule, catch_up="all")
    assert len(fired) == 3
    assert ledger(schedule) == [
        ("2025-06-01T01:00", "missed", 2),
        ("2025-06-01T03:00", "fired", 1),
        ("2025-06-01T04:00", "fired", 1),
        ("2025-06-01T05:00", "fired", 1),
    ]


def test_catch_up_of_an_interval_counts_without_walking_every_slot(clock, make_schedule):
    clock.at("2025-06-01T00:00Z")
    schedule = make_schedule("often", interval_seconds=1)
    clock.at("2025-06-08T00:00:00.500Z")  # a week down: 604801 slots
    assert len(clock.tick().fired) == 1
    missed = schedule.occurrences.get(outcome="missed")
    assert missed.count == 604_800  # 00:00:00 (the anchor) up to, not including, the last


def test_a_paused_span_is_one_missed_row(clock, make_schedule):
    clock.at("2025-06-01T00:30Z")
    schedule = make_schedule("hourly", cron="0 * * * *")
    store.pause(schedule, "maintenance")
    clock.at("2025-06-01T05:10Z")
    assert clock.tick().fired == []
    schedule = store.resume(schedule)
    assert ledger(schedule) == [("2025-06-01T01:00", "missed", 5)]
    assert schedule.occurrences.get().reason == "paused"
    assert schedule.next_fire_at == datetime(2025, 6, 1, 6, tzinfo=UTC)
    assert clock.tick().fired == []  # nothing caught up


# --- Retirement --------------------------------------------------------------------------------


def test_a_one_time_schedule_fires_once_then_is_done(clock, make_schedule):
    clock.at("2025-06-01T00:00Z")
    schedule = make_schedule("once", run_at="2025-06-01T09:30:00", timezone="Europe/Berlin")
    assert schedule.next_fire_at == datetime(2025, 6, 1, 7, 30, tzinfo=UTC)
    clock.at("2025-06-01T07:30:00.200Z")
    assert len(clock.tick().fired) == 1
    schedule.refresh_from_db()
    assert schedule.is_done and schedule.next_fire_at is None
    assert schedule.done_reason == "fired its one time"
    clock.at("2025-06-02T07:30Z")
    assert clock.tick().fired == []


def test_max_runs_retires_the_schedule(clock, make_schedule):
    clock.at("2025-06-01T00:00Z")
    schedule = make_schedule("twice", interval_seconds=60, max_runs=2)
    for minute in (1, 2, 3, 4):
        clock.at(f"2025-06-01T00:0{minute}:00.100Z")
        clock.tick()
    schedule.refresh_from_db()
    assert schedule.run_count == 2 and schedule.is_done
    assert "max_runs" in schedule.done_reason
    assert Run.objects.count() == 2


def test_end_at_retires_the_schedule(clock, make_schedule):
    clock.at("2025-06-01T00:00Z")
    schedule = make_schedule("bounded", cron="0 * * * *", end_at="2025-06-01T02:30:00Z")
    for hour in (1, 2, 3):
        clock.at(f"2025-06-01T0{hour}:00:00.100Z")
        clock.tick()
    schedule.refresh_from_db()
    assert schedule.run_count == 2 and schedule.is_done


def test_start_at_delays_the_first_slot(clock, make_schedule):
    clock.at("2025-06-01T00:00Z")
    schedule = make_schedule(
        "later", cron="0 * * * *", start_at="2025-06-03T10:00:00Z", timezone="UTC"
    )
    assert schedule.next_fire_at == datetime(2025, 6, 3, 10, tzinfo=UTC)


# --- Failing to fire ---------------------------------------------------------------------------


def test_input_that_no_longer_fits_is_failed_to_fire_and_flagged(
    clock, make_schedule, settings, tmp_path
):
    task_file = tmp_path / "report.py"
    task_file.write_text(
        "from runs.definitions import task\n"
        "@task(schedulable=True, input_schema={'type': 'object', 'properties': {'n': {'type': 'integer'}}})\n"
        "def run(ctx):\n    return 1\n"
    )
    settings.STUDIO_TASKS_DIR = tmp_path
    clock.at("2025-06-01T00:30Z")
    schedule = make_schedule("report", target="task:report", cron="0 * * * *", input={"n": 1})
    # The task changes: n is now a string, so the stored input no longer fits.
    task_file.write_text(
        "from runs.definitions import task\n"
        "@task(schedulable=True, input_schema={'type': 'object', 'properties': {'n': {'type': 'string'}}})\n"
        "def run(ctx):\n    return 1\n"
    )
    import os

    os.utime(task_file, ns=(1, 2_000_000_000_000_000_000))
    clock.at("2025-06-01T01:00:01Z")
    assert clock.tick().fired == []
    occ = schedule.occurrences.get()
    assert occ.outcome == ScheduleOccurrence.Outcome.FAILED_TO_FIRE
    assert "input.n" in occ.reason
    schedule.refresh_from_db()
    assert "input.n" in schedule.fire_error
    assert schedule.next_fire_at == datetime(2025, 6, 1, 2, tzinfo=UTC)  # not wedged


def test_a_task_no_longer_schedulable_fails_to_fire(clock, make_schedule, settings, tmp_path):
    task_file = tmp_path / "report.py"
    task_file.write_text(
        "from runs.definitions import task\n@task(schedulable=True)\ndef run(ctx):\n    return 1\n"
    )
    settings.STUDIO_TASKS_DIR = tmp_path
    clock.at("2025-06-01T00:30Z")
    schedule = make_schedule("report", target="task:report", cron="0 * * * *")
    task_file.unlink()
    clock.at("2025-06-01T01:00:01Z")
    assert clock.tick().fired == []
    occ = schedule.occurrences.get()
    assert occ.outcome == "failed_to_fire" and "report" in occ.reason


def test_intervals_count_absolute_time(clock, make_schedule):
    clock.at("2025-03-30T00:00Z")
    schedule = make_schedule("every-hour", interval_seconds=3600, timezone="Europe/Berlin")
    slots = list(islice(schedule.timing.slots_after(datetime(2025, 3, 29, 23, tzinfo=UTC)), 4))
    assert [b - a for a, b in zip(slots, slots[1:], strict=False)] == [timedelta(hours=1)] * 3


def test_a_buffered_slot_waits_while_the_schedule_is_paused(clock, make_schedule):
    clock.at("2025-06-01T00:30Z")
    schedule = make_schedule("hourly", cron="0 * * * *", concurrency_policy="BufferOne")
    clock.at("2025-06-01T01:00:01Z")
    (first,) = clock.tick().fired
    clock.at("2025-06-01T02:00:01Z")
    clock.tick()  # buffered behind the first
    store.pause(schedule)
    finish(first)
    clock.at("2025-06-01T02:10Z")
    assert clock.tick().fired == []
    store.resume(schedule)
    assert len(clock.tick().fired) == 1


def test_an_unexpected_error_records_the_slot_and_moves_on(clock, make_schedule, monkeypatch):
    clock.at("2025-06-01T00:30Z")
    schedule = make_schedule("hourly", cron="0 * * * *")

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("runs.schedules.engine._fire_slot", explode)
    clock.at("2025-06-01T01:00:01Z")
    assert clock.tick().fired == []
    occ = schedule.occurrences.get()
    assert occ.outcome == "failed_to_fire" and "boom" in occ.reason
    schedule.refresh_from_db()
    assert schedule.next_fire_at == datetime(2025, 6, 1, 2, tzinfo=UTC)
    assert "boom" in schedule.fire_error
