"""Daylight-saving days, fired through the engine with the clock jumping to each due time.

The rules are cronsim's (Debian cron's): a job at a fixed hour and minute whose time is skipped
by spring-forward fires once, right after the jump; one whose time repeats in fall-back fires
once (the first time). A job whose hour field is a wildcard fires in every real hour: none in
the skipped hour, twice in the repeated one.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from runs.models import Run

pytestmark = pytest.mark.django_db


def fire_through(clock, make_schedule, *, cron: str, zone: str, start: str, end: str) -> list[str]:
    """Create the schedule at `start` (UTC) and let the loop run until `end`; return the local
    wall-clock time (with its offset) of every slot that fired."""
    clock.at(start)
    schedule = make_schedule("dst", cron=cron, timezone=zone)
    stop = datetime.fromisoformat(end.replace("Z", "+00:00"))
    while True:
        schedule.refresh_from_db()
        due = schedule.next_fire_at
        if due is None or due > stop:
            break
        clock.at(due.replace(microsecond=200_000))
        clock.tick()
    tz = ZoneInfo(zone)
    fired = sorted(
        datetime.fromisoformat(r.metadata["scheduled_for"].replace("Z", "+00:00"))
        for r in Run.objects.filter(schedule_id="dst")
    )
    return [f.astimezone(tz).strftime("%m-%d %H:%M%z") for f in fired]


def test_berlin_spring_forward_fixed_time_fires_once_right_after_the_jump(clock, make_schedule):
    fired = fire_through(
        clock,
        make_schedule,
        cron="30 2 * * *",
        zone="Europe/Berlin",
        start="2025-03-28T12:00Z",
        end="2025-03-31T12:00Z",
    )
    assert fired == ["03-29 02:30+0100", "03-30 03:00+0200", "03-31 02:30+0200"]


def test_berlin_spring_forward_every_hour_fires_in_each_real_hour(clock, make_schedule):
    fired = fire_through(
        clock,
        make_schedule,
        cron="30 * * * *",
        zone="Europe/Berlin",
        start="2025-03-29T23:00Z",
        end="2025-03-30T03:00Z",  # 00:00 CET .. 05:00 CEST
    )
    assert fired == ["03-30 00:30+0100", "03-30 01:30+0100", "03-30 03:30+0200", "03-30 04:30+0200"]


def test_berlin_fall_back_fixed_time_fires_once(clock, make_schedule):
    fired = fire_through(
        clock,
        make_schedule,
        cron="30 2 * * *",
        zone="Europe/Berlin",
        start="2025-10-25T12:00Z",
        end="2025-10-27T12:00Z",
    )
    assert fired == ["10-26 02:30+0200", "10-27 02:30+0100"]


def test_berlin_fall_back_every_hour_fires_in_both_repeated_hours(clock, make_schedule):
    fired = fire_through(
        clock,
        make_schedule,
        cron="30 * * * *",
        zone="Europe/Berlin",
        start="2025-10-25T22:00Z",
        end="2025-10-26T03:00Z",  # 00:00 CEST .. 04:00 CET
    )
    assert fired == [
        "10-26 00:30+0200",
        "10-26 01:30+0200",
        "10-26 02:30+0200",
        "10-26 02:30+0100",
        "10-26 03:30+0100",
    ]


def test_new_york_spring_forward_fixed_time_and_every_hour(clock, make_schedule):
    fixed = fire_through(
        clock,
        make_schedule,
        cron="30 2 * * *",
        zone="America/New_York",
        start="2025-03-08T12:00Z",
        end="2025-03-10T12:00Z",
    )
    assert fixed == ["03-09 03:00-0400", "03-10 02:30-0400"]
    Run.objects.all().delete()
    from runs.models import Schedule

    Schedule.objects.all().delete()
    hourly = fire_through(
        clock,
        make_schedule,
        cron="30 * * * *",
        zone="America/New_York",
        start="2025-03-09T05:00Z",
        end="2025-03-09T08:00Z",  # 00:00 EST .. 04:00 EDT
    )
    assert hourly == ["03-09 00:30-0500", "03-09 01:30-0500", "03-09 03:30-0400"]


def test_new_york_fall_back_fixed_time_and_every_hour(clock, make_schedule):
    from runs.models import Schedule

    fixed = fire_through(
        clock,
        make_schedule,
        cron="30 1 * * *",
        zone="America/New_York",
        start="2025-11-01T12:00Z",
        end="2025-11-03T12:00Z",
    )
    assert fixed == ["11-02 01:30-0400", "11-03 01:30-0500"]
    Run.objects.all().delete()
    Schedule.objects.all().delete()
    hourly = fire_through(
        clock,
        make_schedule,
        cron="30 * * * *",
        zone="America/New_York",
        start="2025-11-02T04:00Z",
        end="2025-11-02T08:00Z",  # 00:00 EDT .. 03:00 EST
    )
    assert hourly == [
        "11-02 00:30-0400",
        "11-02 01:30-0400",
        "11-02 01:30-0500",
        "11-02 02:30-0500",
    ]


def test_a_daily_job_in_a_zone_keeps_its_wall_clock_time_across_the_change(clock, make_schedule):
    fired = fire_through(
        clock,
        make_schedule,
        cron="0 9 * * *",
        zone="Europe/Berlin",
        start="2025-03-29T00:00Z",
        end="2025-03-31T12:00Z",
    )
    assert fired == ["03-29 09:00+0100", "03-30 09:00+0200", "03-31 09:00+0200"]
