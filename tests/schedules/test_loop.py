"""The scheduler loop sleeps until the next due time, never longer than a second."""

from __future__ import annotations

import pytest

from runs.schedules.loop import SchedulerThread

pytestmark = pytest.mark.django_db


def test_it_sleeps_until_the_next_due_time_within_bounds(clock, make_schedule):
    thread = SchedulerThread()
    clock.at("2025-06-01T00:00:00Z")
    assert thread._until_next_due() == 1.0  # nothing scheduled: look again in a second
    make_schedule("soon", run_at="2025-06-01T00:00:00.300Z")
    assert thread._until_next_due() == pytest.approx(0.3)
    clock.at("2025-06-01T00:00:05Z")
    assert thread._until_next_due() == 0.0  # overdue: at once


def test_a_paused_or_far_schedule_does_not_shorten_the_sleep(clock, make_schedule):
    from runs.schedules import store

    thread = SchedulerThread()
    clock.at("2025-06-01T00:00:00Z")
    paused = make_schedule("paused", run_at="2025-06-01T00:00:00.200Z")
    store.pause(paused)
    make_schedule("later", run_at="2025-06-01T01:00:00Z")
    assert thread._until_next_due() == 1.0
