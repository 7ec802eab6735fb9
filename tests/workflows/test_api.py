"""The workflow surfaces of the REST API, and who may use them."""

from __future__ import annotations

import pytest

from runs.models import Run, WorkflowApproval, WorkflowSignal
from runs.orchestration.engine import advance
from tests.api.conftest import ApiClient, assert_error

from .conftest import children, finish

pytestmark = pytest.mark.django_db


def workflow_body(project, **request):
    """What the Veryfront SDK's createWorkflowRun sends."""
    return {
        "kind": "workflow",
        "owner": {"kind": "project", "id": str(project.id)},
        "public_id": "sdk-1",
        "request": {
            "workflow_id": "chain",
            "target": "workflow:chain",
            "input": {"x": 1},
            "start_mode": "immediate",
            "runtime_target_kind": None,
            **request,
        },
    }


def test_it_creates_a_workflow_run_from_the_veryfront_shaped_request(api, project):
    response = api.post("/runs", workflow_body(project))
    assert response.status_code == 202, response.content
    run = response.json()["run"]
    assert run["kind"] == "workflow" and run["target"] == "workflow:chain"
    assert run["workflow_id"] == "chain" and run["status"] == "pending"
    assert run["start_mode"] == "immediate" and run["trigger_kind"] == "api"
    assert run["input"] == {"x": 1}


def test_a_missing_target_means_the_workflow_and_a_different_one_is_a_422(api, project):
    body = workflow_body(project)
    del body["request"]["target"]
    assert api.post("/runs", body).status_code == 202
    error = assert_error(
        api.post("/runs", workflow_body(project, target="workflow:parallel")), 422, "invalid_input"
    )
    assert error["detail"][0]["field"] == "request.target"


def test_bad_workflow_input_is_a_422_naming_the_field(api, project):
    error = assert_error(api.post("/runs", workflow_body(project, input={"x": "one"})), 422)
    assert error["detail"][0]["field"].startswith("request.input")
    assert not Run.objects.exists()
    assert_error(
        api.post("/runs", workflow_body(project, workflow_id="nope", target=None)),
        422,
        "target_not_found",
    )


def test_it_lists_workflows_with_their_graph(api, project):
    data = api.get("/projects/acme/workflows").json()["data"]
    ids = [w["id"] for w in data]
    assert "chain" in ids and "broken" not in ids
    chain = api.get("/projects/acme/workflows/chain").json()
    assert set(chain) == {
        "id",
        "name",
        "description",
        "schedulable",
        "input_schema",
        "output_schema",
        "graph",
    }
    assert chain["graph"] == {
        "nodes": [
            {"id": "a", "kind": "task", "target": "task:value", "name": "a"},
            {"id": "b", "kind": "task", "target": "task:value", "name": "b"},
        ],
        "edges": [{"from": "a", "to": "b"}],
    }
    assert_error(api.get("/projects/acme/workflows/nope"), 404, "not_found")


def _launched(api, project, workflow_id="chain", input=None) -> Run:
    body = workflow_body(project, workflow_id=workflow_id, target=None, input=input or {"x": 1})
    body["public_id"] = None
    run = Run.objects.get(pk=api.post("/runs", body).json()["run"]["run_id"])
    advance(run.pk)
    return run


def test_steps_in_graph_order_and_child_runs_by_parent(api, project):
    run = _launched(api, project)
    finish(children(run, "a")[0], output={"n": 1})
    data = api.get(f"/runs/{run.pk}/steps").json()["data"]
    assert [s["step_id"] for s in data] == ["a", "b"]
    assert set(data[0]) == {
        "step_id",
        "kind",
        "name",
        "status",
        "depends_on",
        "child_run_ids",
        "started_at",
        "completed_at",
        "output",
        "error",
        "reused_from_run_id",
    }
    assert data[0]["status"] == "completed" and data[0]["output"] == {"n": 1}
    assert data[1]["depends_on"] == ["a"] and data[1]["status"] == "running"
    kids = api.get("/projects/acme/runs", {"parent_run_id": run.pk}).json()["data"]
    assert {k["run_id"] for k in kids} == set(data[0]["child_run_ids"] + data[1]["child_run_ids"])
    roots = api.get("/projects/acme/runs", {"root_only": "true"}).json()["data"]
    assert [r["run_id"] for r in roots] == [run.pk]


def test_approvals_list_and_decide_once(api, project):
    run = _launched(api, project, "gate")
    data = api.get(f"/runs/{run.pk}/approvals").json()["data"]
    assert len(data) == 1 and data[0]["status"] == "pending" and data[0]["message"] == "Ship it?"
    response = api.post(f"/runs/{run.pk}/approvals/review", {"approved": True, "comment": "ok"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["approval"]["status"] == "approved"
    assert body["approval"]["decided_by"] == "token:ci"
    assert body["run"]["run_id"] == run.pk
    assert_error(
        api.post(f"/runs/{run.pk}/approvals/review", {"approved": False}), 409, "already_decided"
    )
    assert_error(api.post(f"/runs/{run.pk}/approvals/nope", {"approved": True}), 404, "not_found")
    assert_error(api.post(f"/runs/{run.pk}/approvals/review", {"approved": "maybe"}), 422)


def test_signal_is_kept_on_the_run(api, project):
    run = _launched(api, project, "waits")
    response = api.post(
        f"/runs/{run.pk}/signal", {"event": "payment.received", "payload": {"amount": 1}}
    )
    assert response.status_code == 202 and response.json() == {"accepted": True}
    assert WorkflowSignal.objects.get(run=run).payload == {"amount": 1}
    assert_error(api.post(f"/runs/{run.pk}/signal", {"payload": 1}), 422)


def test_rerun_from_failed(api, project):
    run = _launched(api, project)
    finish(children(run, "a")[0], output={"n": 1})
    finish(children(run, "b")[0], status="failed")
    response = api.post(f"/runs/{run.pk}/rerun", {"from": "failed"})
    assert response.status_code == 202, response.content
    again = Run.objects.get(pk=response.json()["run"]["run_id"])
    advance(again.pk)
    steps = api.get(f"/runs/{again.pk}/steps").json()["data"]
    assert steps[0]["status"] == "completed" and steps[0]["reused_from_run_id"] == run.pk
    assert steps[1]["status"] == "running"
    assert api.post(f"/runs/{run.pk}/rerun").status_code == 202
    assert_error(api.post(f"/runs/{run.pk}/rerun", {"from": "scratch"}), 422)


# --- access ---------------------------------------------------------------------------------


@pytest.fixture
def gate_run(api, project) -> Run:
    return _launched(api, project, "gate")


READS = [
    "/projects/acme/workflows",
    "/projects/acme/workflows/chain",
    "/runs/{run}/steps",
    "/runs/{run}/approvals",
]
WRITES = [
    ("/runs/{run}/approvals/review", {"approved": True}),
    ("/runs/{run}/signal", {"event": "x"}),
]


@pytest.mark.parametrize("path", READS)
def test_reads_need_a_token_of_the_project(path, gate_run, read_only_secret, outsider_secret):
    url = path.format(run=gate_run.pk)
    assert ApiClient(read_only_secret).get(url).status_code == 200
    assert_error(ApiClient(None).get(url), 401)
    assert_error(ApiClient(outsider_secret).get(url), 404)


@pytest.mark.parametrize("path, body", WRITES)
def test_writes_need_a_read_write_token_of_the_project(
    path, body, gate_run, read_only_secret, outsider_secret
):
    url = path.format(run=gate_run.pk)
    assert_error(ApiClient(None).post(url, body), 401)
    assert_error(ApiClient(read_only_secret).post(url, body), 403)
    assert_error(ApiClient(outsider_secret).post(url, body), 404)
    assert WorkflowApproval.objects.get(run=gate_run).status == "pending"
    assert not WorkflowSignal.objects.exists()


def test_a_task_run_has_no_approvals_to_decide(api, project):
    from tests.api.conftest import make_run

    run = make_run(project)
    assert_error(api.post(f"/runs/{run.pk}/signal", {"event": "x"}), 409, "not_a_workflow")
    assert api.get(f"/runs/{run.pk}/steps").json() == {"data": []}


@pytest.mark.parametrize(
    "path, body",
    [
        ("/runs/{run}/signal", {"event": "a\x00b"}),
        ("/runs/{run}/signal", {"event": "x" * 300}),
        ("/runs/{run}/signal", {"event": "ok", "payload": {"s": "nul\x00"}}),
        ("/runs/{run}/approvals/review", {"approved": True, "comment": "nul\x00"}),
        ("/runs/{run}/approvals/review", {"approved": 1}),
        ("/runs/{run}/approvals/review", {"approved": True, "extra": 1}),
        ("/runs/{run}/approvals/" + "x" * 500, {"approved": True}),
    ],
)
def test_crafted_input_is_a_4xx_and_changes_nothing(api, gate_run, path, body):
    response = api.post(path.format(run=gate_run.pk), body)
    assert 400 <= response.status_code < 500, response.content
    assert WorkflowApproval.objects.get(run=gate_run).status == "pending"
    assert not WorkflowSignal.objects.exists()
