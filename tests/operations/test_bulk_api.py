"""Bulk cancel and re-run through the API and the SDK: 202 + an operation processed in batches
in the background, its progress, access, and bad input."""

from __future__ import annotations

import pytest

from runs import operations
from runs.client import RunsClient
from runs.models import ApiToken, Operation, Run
from tests.api.conftest import ApiClient, assert_error
from tests.dashboard.conftest import make_run
from tests.workers import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_queue(monkeypatch, request):
    """Without a real worker, the queue is left out; batches are run by the test itself."""
    if "start_worker" not in request.fixturenames:
        monkeypatch.setattr("runs.lifecycle.enqueue", lambda run_id, **kw: None)


@pytest.fixture
def api(project):
    return ApiClient(ApiToken.issue(project, "ci")[1])


@pytest.fixture
def reader(project):
    return ApiClient(ApiToken.issue(project, "reader", read_only=True)[1])


@pytest.fixture
def outsider_api(other_project):
    return ApiClient(ApiToken.issue(other_project, "outsider")[1])


def run_all(operation_id: str) -> Operation:
    while operations.process_batch(operation_id):
        pass
    return Operation.objects.get(pk=operation_id)


def test_cancel_by_ids_is_accepted_then_done_in_the_background(api, project):
    pending = make_run(project, status="pending")
    running = make_run(project, status="running")
    finished = make_run(project, status="completed")
    response = api.post(
        "/projects/acme/runs/cancel", {"run_ids": [pending.pk, running.pk, finished.pk]}
    )
    assert response.status_code == 202
    operation_id = response.json()["operation_id"]

    before = api.get(f"/projects/acme/operations/{operation_id}").json()
    assert before["status"] == "pending" and before["total"] == 3 and before["processed"] == 0
    pending.refresh_from_db()
    assert pending.status == "pending"  # nothing was done in the request

    run_all(operation_id)
    body = api.get(f"/projects/acme/operations/{operation_id}").json()
    assert body["status"] == "completed" and body["finished_at"]
    assert (body["processed"], body["succeeded"], body["skipped"], body["failed"]) == (3, 2, 1, 0)
    pending.refresh_from_db()
    running.refresh_from_db()
    assert pending.status == "cancelled"
    assert running.cancel_requested_at is not None  # its worker stops it
    assert "bulk" in running.cancel_reason


def test_cancel_by_filter_touches_only_matching_unfinished_runs(api, project):
    sync = [make_run(project, status="pending", target="task:sync-data") for _ in range(3)]
    other = make_run(project, status="pending", target="task:long-running")
    done = make_run(project, status="failed", target="task:sync-data")
    response = api.post("/projects/acme/runs/cancel", {"filter": {"target": "task:sync-data"}})
    operation = run_all(response.json()["operation_id"])
    assert operation.total == 3 and operation.succeeded == 3
    assert set(Run.objects.filter(status="cancelled").values_list("pk", flat=True)) == {
        r.pk for r in sync
    }
    other.refresh_from_db()
    done.refresh_from_db()
    assert (other.status, done.status) == ("pending", "failed")


def test_rerun_creates_a_new_run_per_run_and_lists_them(api, project):
    originals = [
        make_run(project, status="failed", target="task:sync-data", input={"limit": n})
        for n in (1, 2)
    ]
    response = api.post("/projects/acme/runs/rerun", {"run_ids": [r.pk for r in originals]})
    operation = run_all(response.json()["operation_id"])
    assert operation.succeeded == 2
    new = Run.objects.filter(pk__in=operation.result["new_run_ids"])
    assert sorted(r.input["limit"] for r in new) == [1, 2]
    assert {r.metadata["rerun_of"] for r in new} == {r.pk for r in originals}
    assert {r.trigger_kind for r in new} == {"api"}


def test_a_big_operation_goes_in_batches(api, project, monkeypatch):
    monkeypatch.setattr(operations, "BATCH_SIZE", 2)
    runs = [make_run(project, status="pending") for _ in range(5)]
    operation_id = api.post("/projects/acme/runs/cancel", {"run_ids": [r.pk for r in runs]}).json()[
        "operation_id"
    ]
    assert operations.process_batch(operation_id) is True
    middle = api.get(f"/projects/acme/operations/{operation_id}").json()
    assert (middle["status"], middle["processed"], middle["total"]) == ("running", 2, 5)
    run_all(operation_id)
    assert Run.objects.filter(status="cancelled").count() == 5


def test_a_finished_operation_is_not_done_twice(api, project):
    runs = [make_run(project, status="failed") for _ in range(2)]
    operation_id = api.post("/projects/acme/runs/rerun", {"run_ids": [r.pk for r in runs]}).json()[
        "operation_id"
    ]
    run_all(operation_id)
    assert operations.process_batch(operation_id) is False
    assert operations.process_next() is False
    assert Run.objects.count() == 4


def test_another_projects_run_ids_are_skipped_not_touched(api, project, other_project):
    theirs = make_run(other_project, status="pending")
    mine = make_run(project, status="pending")
    response = api.post("/projects/acme/runs/cancel", {"run_ids": [theirs.pk, mine.pk]})
    operation = run_all(response.json()["operation_id"])
    assert (operation.total, operation.succeeded, operation.skipped) == (2, 1, 1)
    theirs.refresh_from_db()
    assert theirs.status == "pending"
    assert operation.result["not_found"] == [theirs.pk]


# --- access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["cancel", "rerun"])
def test_access_to_bulk_writes(api, reader, outsider_api, project, kind):
    run = make_run(project, status="pending")
    body = {"run_ids": [run.pk]}
    assert_error(api.post(f"/projects/acme/runs/{kind}", body, token=None), 401, "unauthorized")
    assert_error(reader.post(f"/projects/acme/runs/{kind}", body), 403, "read_only_token")
    assert_error(outsider_api.post(f"/projects/acme/runs/{kind}", body), 404, "not_found")
    assert not Operation.objects.exists()


def test_access_to_an_operation(api, reader, outsider_api, project, other_project):
    run = make_run(project, status="pending")
    operation_id = api.post("/projects/acme/runs/cancel", {"run_ids": [run.pk]}).json()[
        "operation_id"
    ]
    url = f"/projects/acme/operations/{operation_id}"
    assert reader.get(url).status_code == 200
    assert_error(api.get(url, token=None), 401)
    assert_error(outsider_api.get(url), 404)
    # The outsider naming its own project still cannot see acme's operation.
    assert_error(outsider_api.get(f"/projects/outsider/operations/{operation_id}"), 404)
    assert_error(api.get("/projects/acme/operations/not-a-uuid"), 404)


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "body"),
        ({"run_ids": ["run_" + "0" * 32], "filter": {}}, "body"),
        ({"run_ids": []}, "run_ids"),
        ({"run_ids": ["nope"]}, "run_ids.0"),
        ({"filter": {"statu": "pending"}}, "filter.statu"),
        ({"filter": {"status": "sleeping"}}, "filter.status"),
        ({"run_ids": "run_x"}, "run_ids"),
        ({"everything": True}, "everything"),
    ],
)
def test_bad_bodies_get_422_naming_the_field(api, body, field):
    error = assert_error(api.post("/projects/acme/runs/cancel", body), 422, "validation_error")
    assert field in {e["field"] for e in error["detail"]}, error
    assert not Operation.objects.exists()


def test_too_many_runs_is_refused(api, project, monkeypatch):
    monkeypatch.setattr(operations, "MAX_RUNS", 2)
    for _ in range(3):
        make_run(project, status="pending")
    assert_error(api.post("/projects/acme/runs/cancel", {"filter": {}}), 422, "too_many_runs")
    assert not Operation.objects.exists()


# --- a real worker, through the SDK -------------------------------------------------------------


@pytest.mark.worker
def test_the_sdk_cancels_by_filter_and_a_worker_does_it(
    live_server, project, start_worker, transactional_db
):
    secret = ApiToken.issue(project, "ci")[1]
    start_worker(workers=2)
    # Three slow runs: two held by the worker's two threads, one pending behind them.
    runs = [
        make_run(project, target="task:long-running", input={"steps": 600, "delay_seconds": 0.1})
        for _ in range(3)
    ]
    wait_for(lambda: Run.objects.filter(status="running").count() == 2, 20)
    with RunsClient(
        api_url=f"{live_server.url}/api", auth_token=secret, project_reference="acme"
    ) as client:
        operation_id = client.cancel_runs(filter={"target": "task:long-running"})
        operation = client.wait_operation(operation_id, timeout=30, poll_interval=0.1)
        assert operation.status == "completed"
        assert (operation.total, operation.succeeded) == (3, 3)
        wait_for(lambda: Run.objects.filter(status="cancelled").count() == 3, 20)
        Run.objects.filter(pk=runs[0].pk).update(input={"steps": 1, "delay_seconds": 0})
        rerun_id = client.rerun_runs([runs[0].pk])
        rerun = client.wait_operation(rerun_id, timeout=30, poll_interval=0.1)
        new_id = rerun.result["new_run_ids"][0]
        assert client.wait(new_id, timeout=30, poll_interval=0.1).status == "completed"
