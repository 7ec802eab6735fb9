"""Sync the external data every night at 02:00 Berlin time (the hour follows daylight saving).

The schedule's id comes from this file's path: `nightly-sync`. Change this file and the stored
schedule follows within seconds; delete it and the schedule goes (its runs stay).
"""

from runs.schedules import schedule

schedule(
    cron="0 2 * * *",
    timezone="Europe/Berlin",
    target="task:sync-data",
    input={"limit": 100},
    concurrency_policy="Forbid",
    project="default",
    name="Nightly sync",
)
