"""The Python SDK's workflow methods against a live server and a real worker."""

from __future__ import annotations

import pytest

from runs.client import RunsClient, RunsError

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("transactional_db")]


@pytest.fixture
def runs(live_server, secret, start_wf_worker):
    start_wf_worker()
    with RunsClient(
        api_url=f"{live_server.url}/api", auth_token=secret, project_reference="acme"
    ) as client:
        yield client


def _wait_status(runs, run_id, status):
    from tests.workers import wait_for

    return wait_for(lambda: (r := runs.get(run_id)).status == status and r, 30, message=status)


def test_create_approve_signal_and_read_steps(runs):
    assert "gate" in [w["id"] for w in runs.workflows()]
    accepted = runs.create_workflow_run(workflow_id="gate", input={})
    run_id = accepted.run.run_id
    run = _wait_status(runs, run_id, "waiting")
    assert run.waiting_reason == "approval"
    assert runs.approvals(run_id)[0]["status"] == "pending"
    decided = runs.approve(run_id, "review", comment="ship")
    assert decided["approval"]["status"] == "approved"
    with pytest.raises(RunsError) as twice:
        runs.reject(run_id, "review")
    assert (twice.value.status, twice.value.code) == (409, "already_decided")
    run = runs.wait(run_id, timeout=30, poll_interval=0.1)
    assert run.status == "completed" and run.output == {"shipped": "ship"}
    assert [s["status"] for s in runs.steps(run_id)] == ["completed", "completed"]

    waits = runs.create_workflow_run(workflow_id="waits").run.run_id
    assert runs.signal(waits, "payment.received", {"amount": 3}) is True
    run = runs.wait(waits, timeout=30, poll_interval=0.1)
    assert run.status == "completed"
    assert runs.steps(waits)[1]["output"] == {"amount": 3}
