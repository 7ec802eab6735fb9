"""GET /api/runs/{id}, POST /api/runs/{id}/cancel and POST /api/runs/{id}/rerun."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from runs.models import Run, RunEvent

from .conftest import assert_error, make_run
from .test_create_run import RUN_KEYS

pytestmark = pytest.mark.django_db


def test_it_returns_a_run_with_every_key(api, project):
    run = make_run(project, input={"limit": 1})
    response = api.get(f"/runs/{run.pk}")
    assert response.status_code == 200
    data = response.json()
    assert set(data) == RUN_KEYS
    assert data["run_id"] == run.pk
    assert data["input"] == {"limit": 1}
    assert data["runtime_target_branch_id"] is None
    for key in (
        "logs",
        "output",
        "error",
        "exit_code",
        "duration_ms",
        "completed_at",
        "parent_run_id",
    ):
        assert data[key] is None, key
    for key in (
        "run_id",
        "kind",
        "status",
        "owner",
        "root_run_id",
        "artifacts",
        "created_at",
        "updated_at",
    ):
        assert data[key] is not None, key


def test_it_shows_what_a_finished_run_recorded(api, project):
    started = timezone.now() - timedelta(seconds=2)
    run = make_run(project)
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.FAILED,
        output=None,
        error={"message": "cannot sync", "code": "exception", "detail": "Traceback ..."},
        logs="contacting upstream...\n",
        exit_code=1,
        duration_ms=1234,
        started_at=started,
        completed_at=started + timedelta(seconds=1),
        artifacts=[{"name": "report.csv"}],
    )
    data = api.get(f"/runs/{run.pk}").json()
    assert data["status"] == "failed"
    assert data["error"] == {
        "message": "cannot sync",
        "code": "exception",
        "detail": "Traceback ...",
    }
    assert data["logs"] == "contacting upstream...\n"
    assert (data["exit_code"], data["duration_ms"]) == (1, 1234)
    assert data["artifacts"] == [{"name": "report.csv"}]
    assert data["started_at"] is not None and data["completed_at"] is not None


@pytest.mark.parametrize("run_id", [f"run_{'0' * 32}", "nope", "run_XYZ", "run_" + "a" * 40])
def test_it_answers_404_for_a_run_that_does_not_exist(api, run_id):
    error = assert_error(api.get(f"/runs/{run_id}"), 404, "not_found")
    assert run_id in error["message"]


def test_it_cancels_a_pending_run(api, project):
    run = make_run(project)
    response = api.post(f"/runs/{run.pk}/cancel")
    assert response.status_code == 200
    data = response.json()
    assert data["cancelled"] is True
    assert data["run"]["status"] == "cancelled"
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED
    assert RunEvent.objects.filter(run=run, event_type="run.cancelled").count() == 1
    event = RunEvent.objects.get(run=run, event_type="run.cancelled")
    token_name = project.tokens.get().name
    assert event.payload["reason"] == f"cancelled through the API by token:{token_name}"


def test_it_asks_a_running_run_to_stop(api, project):
    run = make_run(project, status=Run.Status.RUNNING, started_at=timezone.now())
    data = api.post(f"/runs/{run.pk}/cancel").json()
    assert data["cancelled"] is True
    assert data["run"]["status"] == "running"  # the worker ends it; the request is recorded
    run.refresh_from_db()
    assert run.cancel_requested_at is not None


@pytest.mark.parametrize("status", [Run.Status.COMPLETED, Run.Status.FAILED, Run.Status.CANCELLED])
def test_it_says_false_when_cancelling_a_finished_run(api, project, status):
    run = make_run(project, status=status, completed_at=timezone.now())
    data = api.post(f"/runs/{run.pk}/cancel").json()
    assert data["cancelled"] is False
    assert data["run"]["status"] == status
    assert not RunEvent.objects.filter(run=run, event_type="run.cancelled").exists()


def test_cancel_ignores_a_body(api, project):
    run = make_run(project)
    assert api.post(f"/runs/{run.pk}/cancel", raw="{not json").status_code == 200


def test_it_reruns_with_the_same_target_input_and_config(
    api, project, enqueued, django_capture_on_commit_callbacks
):
    first = api.post(
        "/runs",
        {
            "kind": "task",
            "owner": {"kind": "project", "id": str(project.id)},
            "request": {
                "target": "task:sync-data",
                "input": {"limit": 2},
                "config": {"batchSize": 5},
            },
        },
    ).json()["run"]
    Run.objects.filter(pk=first["run_id"]).update(status=Run.Status.COMPLETED)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/runs/{first['run_id']}/rerun")
    assert response.status_code == 202
    again = response.json()
    assert again["accepted"] is True and "duplicate" not in again
    run = again["run"]
    assert run["run_id"] != first["run_id"]
    assert run["status"] == "pending"
    assert (run["target"], run["input"], run["config"]) == (
        first["target"],
        first["input"],
        first["config"],
    )
    assert run["metadata"] == {"rerun_of": first["run_id"]}
    assert enqueued == [run["run_id"]]


def test_a_rerun_of_a_task_that_is_gone_says_so(api, project):
    run = make_run(project, target="task:deleted-since")
    error = assert_error(api.post(f"/runs/{run.pk}/rerun"), 422, "target_not_found")
    assert "deleted-since" in error["message"]
    assert Run.objects.count() == 1
