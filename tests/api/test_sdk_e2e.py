"""End to end: the Python SDK against a live server, with a real worker executing the runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runs.client import RunsClient

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("transactional_db")]

RECORDS = json.loads((Path(__file__).resolve().parents[2] / "tasks/_data/records.json").read_text())


@pytest.fixture
def runs(live_server, secret, worker):
    with RunsClient(
        api_url=f"{live_server.url}/api", auth_token=secret, project_reference="acme"
    ) as client:
        yield client


def test_the_sdk_creates_a_run_a_worker_completes_and_reads_its_events(runs, project):
    accepted = runs.create_task_run(
        project_id=str(project.id),
        name="Sync data",
        target="task:sync-data",
        config={"batchSize": 100},
        input={"limit": 2},
    )
    assert accepted.run.status == "pending"

    run = runs.wait(accepted.run.run_id, timeout=60, poll_interval=0.1)

    assert run.status == "completed"
    assert run.output == {"synced": 2, "skipped": len(RECORDS) - 2}
    assert run.error is None and run.exit_code == 0
    assert run.started_at and run.completed_at and run.duration_ms is not None
    assert f"syncing 2 of {len(RECORDS)} records in batches of 100" in run.logs

    events = list(runs.iter_events(run.run_id, limit=2))  # several pages
    types = [e.event_type for e in events]
    assert types[0] == "run.created" and types[1] == "run.started" and types[-1] == "run.completed"
    lines = [e.payload["line"] for e in events if e.event_type == "log"]
    assert lines[0] == f"syncing 2 of {len(RECORDS)} records in batches of 100"
    assert len(lines) == 3
    assert events[-1].payload == {"output": run.output}
    ids = [e.event_id for e in events]
    assert ids == sorted(set(ids))


def test_a_failing_run_reports_its_error_through_the_sdk(runs):
    run_id = runs.create_task_run(
        target="task:failing-task", input={"reason": "upstream is down"}
    ).run.run_id
    run = runs.wait(run_id, timeout=60, poll_interval=0.1)
    assert run.status == "failed"
    assert "upstream is down" in run.error.message
    assert run.error.code
    assert runs.list(status="failed").data[0].run_id == run_id


def test_the_sdk_cancels_a_running_run(runs):
    run_id = runs.create_task_run(
        target="task:long-running", input={"steps": 10000, "delay_seconds": 0.05}
    ).run.run_id
    started = None
    for event in _poll_events(runs, run_id, until="run.started"):
        started = event
    assert started is not None
    result = runs.cancel(run_id)
    assert result.cancelled is True
    run = runs.wait(run_id, timeout=60, poll_interval=0.1)
    assert run.status == "cancelled"
    assert "run.cancelled" in [e.event_type for e in runs.iter_events(run_id)]


def _poll_events(runs, run_id, *, until: str, timeout: float = 30.0):
    """Follow a live run's events (bounded) until one of type `until` arrives."""
    import time

    deadline = time.monotonic() + timeout
    after = None
    while time.monotonic() < deadline:
        page = runs.events(run_id, after_event_id=after)
        for event in page.data:
            after = event.event_id
            yield event
            if event.event_type == until:
                return
        time.sleep(0.05)
    raise AssertionError(f"no {until} event for {run_id} within {timeout}s")
