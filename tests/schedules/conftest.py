"""Fixtures for schedules: a frozen clock, a schedule factory, and a queue kept out of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from runs.models import Run, RunStatus, Schedule
from runs.schedules import engine, store


@pytest.fixture(autouse=True)
def enqueued(request, monkeypatch) -> list[str]:
    """Runs handed to the queue. Tests without a real worker keep the queue out of it."""
    calls: list[str] = []
    if "start_worker" not in request.fixturenames and "worker" not in request.fixturenames:
        monkeypatch.setattr("runs.lifecycle.enqueue", lambda run_id, **kw: calls.append(run_id))
    return calls


class Clock:
    """An injected clock: `clock.at("2025-03-30T01:00Z")` then `clock.tick()` fires what is due."""

    def __init__(self):
        self._travel = None

    def at(self, when: str | datetime) -> datetime:
        if isinstance(when, str):
            when = datetime.fromisoformat(when.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if self._travel is not None:
            self._travel.stop()
        self._travel = time_machine.travel(when, tick=False)
        self._travel.start()
        return when

    def tick(self) -> engine.TickResult:
        return engine.tick()

    def stop(self):
        if self._travel is not None:
            self._travel.stop()


@pytest.fixture
def clock():
    c = Clock()
    yield c
    c.stop()


@pytest.fixture
def make_schedule(project):
    def make(id: str = "nightly", **fields) -> Schedule:
        data = {"id": id, "target": "task:sync-data", **fields}
        if not {"cron", "interval_seconds", "run_at"} & set(fields):
            data["cron"] = "0 2 * * *"
        return store.create(project, data)

    return make


def finish(run_id: str, status: str = RunStatus.COMPLETED) -> None:
    """End a run as a worker would (tests have no worker here)."""
    Run.objects.filter(pk=run_id).update(status=status)


def start(run_id: str) -> None:
    Run.objects.filter(pk=run_id).update(status=RunStatus.RUNNING)


def ledger(schedule: Schedule) -> list[tuple[str, str, int]]:
    """(slot as ISO UTC, outcome, count), oldest first."""
    return [
        (o.slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"), o.outcome, o.count)
        for o in schedule.occurrences.order_by("slot")
    ]
