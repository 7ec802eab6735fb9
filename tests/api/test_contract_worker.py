"""The contract of tests/api/test_contract.py on runs a real worker ran to each end state."""

from __future__ import annotations

import pytest

from runs.models import Run
from tests.workers import wait_for

from . import veryfront_schema as vf
from .test_contract import assert_conforms, assert_studio_run

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("transactional_db")]


@pytest.fixture
def enqueued() -> list[str]:
    """Runs go to the real queue here (the conftest's fixture keeps them out without `worker`)."""
    return []


def _status(run_id: str, *statuses: str) -> bool:
    return Run.objects.filter(pk=run_id, status__in=statuses).exists()


def test_every_end_state_a_worker_reaches_conforms(api, task_body, start_worker):
    # A long first backoff keeps the retried run waiting while it is read.
    start_worker(workers=4, STUDIO_RETRY_BASE_SECONDS=600)

    def create(**request) -> str:
        response = api.post("/runs", task_body(**request))
        assert response.status_code == 202, response.content
        assert_conforms(response.json(), vf.CREATE_RUN_RESPONSE)
        return response.json()["run"]["run_id"]

    ids = {
        "completed": create(input={"limit": 2}),
        "failed": create(target="task:failing-task"),
        "retried": create(target="task:failing-task", backoff_limit=1),
        "timed_out": create(
            target="task:long-running", timeout_seconds=1, input={"delay_seconds": 0.2}
        ),
        "cancelled": create(target="task:long-running", input={"delay_seconds": 0.2}),
    }
    wait_for(lambda: _status(ids["cancelled"], "running"), 60, message="a running run")
    cancel = api.post(f"/runs/{ids['cancelled']}/cancel").json()
    assert_conforms(cancel, vf.CANCEL_RUN_RESPONSE)
    assert cancel["cancelled"] is True

    expected = {
        "completed": ("completed", None),
        "failed": ("failed", "task_error"),
        "retried": ("waiting", "task_error"),
        "timed_out": ("failed", "timeout"),
        "cancelled": ("cancelled", "cancelled"),
    }
    for state, run_id in ids.items():
        status = expected[state][0]
        wait_for(lambda r=run_id, s=status: _status(r, s), 60, message=f"{state} run")

    for state, run_id in ids.items():
        status, code = expected[state]
        run = api.get(f"/runs/{run_id}").json()
        assert_conforms(run, vf.RUN)
        assert_studio_run(run)
        assert run["status"] == status, state
        assert (run["error"] or {}).get("code") == code, (state, run["error"])
        events = api.get(f"/runs/{run_id}/events", {"limit": 1000}).json()
        assert_conforms(events, vf.RUN_EVENT_LIST)

    for fields in ({}, {"fields": "summary"}):
        page = api.get("/projects/acme/runs", fields).json()
        assert_conforms(page, vf.RUN_LIST)
        assert {r["run_id"] for r in page["data"]} == set(ids.values())

    finished = api.post(f"/runs/{ids['completed']}/cancel").json()
    assert_conforms(finished, vf.CANCEL_RUN_RESPONSE)
    assert finished["cancelled"] is False
