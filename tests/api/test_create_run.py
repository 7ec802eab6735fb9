"""POST /api/runs: creating task runs in the Veryfront Runs wire format."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from runs.models import Run, RunEvent
from tests.foundation.helpers import SIMPLE_TASK, rewrite, write_task

from .conftest import assert_error, make_run

pytestmark = pytest.mark.django_db

RUN_KEYS = {
    "run_id", "kind", "status", "owner", "parent_run_id", "root_run_id", "waiting_reason",
    "metadata", "target", "workflow_id", "schedule_id", "batch_id", "runtime_target_kind",
    "runtime_target_environment_id", "runtime_target_branch_id", "input", "config", "output",
    "error", "logs", "artifacts", "duration_ms", "exit_code", "start_mode", "timeout_seconds",
    "backoff_limit", "trigger_kind", "trigger_id", "created_by", "updated_at", "created_at",
    "started_at", "completed_at",
}  # fmt: skip


def test_it_accepts_a_task_run_and_answers_202_with_the_run(
    api, project, task_body, enqueued, django_capture_on_commit_callbacks
):
    body = task_body(name="Sync data", config={"batchSize": 100}, input={"limit": 3})
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/runs", body)
    assert response.status_code == 202
    data = response.json()
    assert data["accepted"] is True
    assert "duplicate" not in data
    run = data["run"]
    assert set(run) == RUN_KEYS
    assert run["run_id"].startswith("run_")
    assert run["kind"] == "task"
    assert run["status"] == "pending"
    assert run["owner"] == {"kind": "project", "id": str(project.id)}
    assert run["root_run_id"] == run["run_id"]
    assert run["parent_run_id"] is None
    assert run["target"] == "task:sync-data"
    assert run["config"] == {"batchSize": 100}
    assert run["input"] == {"limit": 3, "only_active": True}  # the schema's default filled in
    assert run["trigger_kind"] == "api"
    assert run["artifacts"] == []
    assert run["output"] is None and run["error"] is None and run["started_at"] is None
    assert run["created_at"].endswith("Z") or "+" in run["created_at"]
    stored = Run.objects.get(pk=run["run_id"])
    assert stored.project == project and stored.name == "Sync data"
    assert list(RunEvent.objects.filter(run=stored).values_list("event_type", flat=True)) == [
        "run.created"
    ]
    assert enqueued == [run["run_id"]]


def test_it_applies_the_limits_given(api, task_body):
    response = api.post("/runs", task_body(timeout_seconds=30, backoff_limit=2, batch_id="b-1"))
    run = response.json()["run"]
    assert (run["timeout_seconds"], run["backoff_limit"], run["batch_id"]) == (30, 2, "b-1")


def test_it_returns_the_first_run_for_a_repeated_public_id(
    api, task_body, enqueued, django_capture_on_commit_callbacks
):
    body = {**task_body(input={"limit": 1}), "public_id": "order-42"}
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post("/runs", body)
        second = api.post("/runs", body)
    assert first.status_code == second.status_code == 202
    assert "duplicate" not in first.json()
    assert second.json()["duplicate"] is True
    assert second.json()["accepted"] is True
    assert second.json()["run"]["run_id"] == first.json()["run"]["run_id"]
    assert Run.objects.count() == 1
    assert enqueued == [first.json()["run"]["run_id"]]  # nothing new started


def test_a_public_id_is_per_project(api, task_body, other_project, outsider_secret):
    body = {**task_body(), "public_id": "shared-key"}
    first = api.post("/runs", body)
    outsider_body = {**body, "owner": {"kind": "project", "id": str(other_project.id)}}
    second = api.post("/runs", outsider_body, token=outsider_secret)
    assert second.status_code == 202
    assert "duplicate" not in second.json()
    assert second.json()["run"]["run_id"] != first.json()["run"]["run_id"]


def test_it_links_a_child_run_to_its_parent_and_root(api, project, task_body):
    root = make_run(project)
    parent = make_run(project, parent_run=root, root_run=root)
    response = api.post("/runs", {**task_body(), "parent_run_id": parent.pk})
    run = response.json()["run"]
    assert run["parent_run_id"] == parent.pk
    assert run["root_run_id"] == root.pk


def test_it_refuses_a_parent_run_of_another_project(api, other_project, task_body):
    foreign = make_run(other_project)
    error = assert_error(api.post("/runs", {**task_body(), "parent_run_id": foreign.pk}), 422)
    assert error["detail"][0]["field"] == "parent_run_id"
    assert Run.objects.count() == 1


def test_it_refuses_an_unknown_target_and_lists_the_tasks(api, task_body):
    error = assert_error(api.post("/runs", task_body(target="task:nope")), 422, "target_not_found")
    assert "nope" in error["message"] and "sync-data" in error["message"]
    assert error["detail"] == [
        {"field": "request.target", "message": "no task with id 'nope'", "rule": "exists"}
    ]
    assert not Run.objects.exists()


def test_it_refuses_a_target_that_is_not_a_task(api, task_body):
    error = assert_error(api.post("/runs", task_body(target="sync-data")), 422, "target_not_found")
    assert error["detail"][0]["field"] == "request.target"


def test_it_names_each_field_and_rule_of_input_that_breaks_the_schema(api, task_body):
    response = api.post(
        "/runs", task_body(input={"limit": 0, "only_active": "yes", "colour": "red"})
    )
    error = assert_error(response, 422, "invalid_input")
    problems = {(e["field"], e["rule"]) for e in error["detail"]}
    assert ("request.input.limit", "minimum") in problems
    assert ("request.input.only_active", "type") in problems
    assert any(rule == "additionalProperties" for _, rule in problems)
    assert "limit" in error["message"]
    assert not Run.objects.exists()


def test_it_names_a_missing_required_input_field(api, task_body):
    body = task_body(target="task:onboard-customer", input={"company": "Acme", "plan": "pro"})
    error = assert_error(api.post("/runs", body), 422, "invalid_input")
    fields = {(e["field"], e["rule"]) for e in error["detail"]}
    assert ("request.input.email", "required") in fields
    assert ("request.input.start_date", "required") in fields


@pytest.mark.parametrize(
    ("request_part", "field", "rule"),
    [
        ({"timeout_seconds": "30"}, "request.timeout_seconds", "int_type"),
        ({"timeout_seconds": 0}, "request.timeout_seconds", "greater_than_equal"),
        ({"backoff_limit": -1}, "request.backoff_limit", "greater_than_equal"),
        ({"backoff_limit": 1.5}, "request.backoff_limit", "int_type"),
        ({"input": [1, 2]}, "request.input", "dict_type"),
        ({"config": "batchSize=100"}, "request.config", "dict_type"),
        ({"name": 7}, "request.name", "string_type"),
        ({"target": None}, "request.target", "string_type"),
        ({"name": "x" * 256}, "request.name", "string_too_long"),
        ({"input": {"note": "a\x00b"}}, "request.input", "value_error"),
    ],
)
def test_it_refuses_wrong_types_naming_the_field_and_rule(
    api, task_body, request_part, field, rule
):
    error = assert_error(api.post("/runs", task_body(**request_part)), 422, "validation_error")
    assert {"field": field, "rule": rule} in [
        {"field": e["field"], "rule": e["rule"]} for e in error["detail"]
    ]
    assert field in error["message"]
    assert not Run.objects.exists()


def test_it_refuses_unknown_fields_at_every_level(api, task_body):
    body = {**task_body(colour="red"), "priority": 1}
    body["owner"]["region"] = "eu"
    error = assert_error(api.post("/runs", body), 422, "validation_error")
    assert {(e["field"], e["rule"]) for e in error["detail"]} == {
        ("request.colour", "extra_forbidden"),
        ("priority", "extra_forbidden"),
        ("owner.region", "extra_forbidden"),
    }


@pytest.mark.parametrize("part", ["owner", "request"])
@pytest.mark.parametrize("value", ["acme", 7, ["a list"]])
def test_it_names_a_part_that_is_not_an_object_with_its_rule(api, task_body, part, value):
    error = assert_error(api.post("/runs", {**task_body(), part: value}), 422, "validation_error")
    assert error["detail"] == [
        {
            "field": part,
            "message": "Input should be a valid dictionary or object to extract fields from",
            "rule": "model_attributes_type",
        }
    ]


def test_it_names_missing_top_level_fields(api):
    error = assert_error(api.post("/runs", {"kind": "task"}), 422, "validation_error")
    assert {e["field"] for e in error["detail"]} == {"owner", "request"}
    assert {e["rule"] for e in error["detail"]} == {"missing"}


@pytest.mark.parametrize("kind", ["job", None, 3])
def test_it_refuses_an_unknown_kind(api, task_body, kind):
    error = assert_error(api.post("/runs", {**task_body(), "kind": kind}), 422, "validation_error")
    assert "kind" in error["message"]


def test_it_refuses_an_owner_that_is_not_a_project_uuid(api, task_body):
    body = task_body()
    body["owner"] = {"kind": "project", "id": "acme"}
    error = assert_error(api.post("/runs", body), 422, "validation_error")
    assert error["detail"][0]["field"] == "owner.id"


def test_it_answers_an_unknown_workflow_with_a_clear_422(api, project):
    body = {
        "kind": "workflow",
        "owner": {"kind": "project", "id": str(project.id)},
        "request": {
            "workflow_id": "no-such-workflow",
            "target": "workflow:no-such-workflow",
            "input": {},
            "start_mode": "immediate",
        },
    }
    error = assert_error(api.post("/runs", body), 422, "target_not_found")
    assert "no workflow with id 'no-such-workflow'" in error["message"]
    assert not Run.objects.exists()


def test_it_refuses_a_workflow_target_in_a_task_request(api, task_body):
    error = assert_error(
        api.post("/runs", task_body(target="workflow:nightly")), 422, "invalid_input"
    )
    assert 'kind "workflow"' in error["message"]
    assert error["detail"][0]["field"] == "request.target"


@pytest.mark.parametrize(
    "raw", ["{not json", '{"kind": "task",}', "[1, 2", '{"kind": NaN}', "\xff\xfe", "nul\x00"]
)
def test_it_answers_400_to_malformed_json(api, raw):
    error = assert_error(api.post("/runs", raw=raw), 400, "malformed_json")
    assert "JSON" in error["message"]


@pytest.mark.parametrize("body", [[], "a run", 42, None])
def test_it_refuses_a_body_that_is_not_an_object(api, body):
    raw = "null" if body is None else None
    assert_error(api.post("/runs", body, raw=raw), 422, "validation_error")


def test_it_answers_422_to_an_empty_body(api):
    error = assert_error(api.post("/runs", raw=""), 422, "validation_error")
    assert error["detail"][0]["rule"] == "missing"


@pytest.mark.parametrize(
    "django_limit",
    [2048, 1024 * 1024],  # Django refuses the body first / Studio's own limit is the lower one
)
def test_it_answers_413_to_a_body_over_the_limit(api, task_body, settings, django_limit):
    settings.STUDIO_MAX_BODY_BYTES = 2048
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = django_limit
    body = task_body(input={"limit": 1}, config={"padding": "x" * 4096})
    error = assert_error(api.post("/runs", body), 413, "body_too_large")
    assert "2048" in error["message"]
    assert not Run.objects.exists()


@override_settings(STUDIO_MAX_BODY_BYTES=2048)
def test_it_accepts_a_body_just_under_the_limit(api, task_body):
    body = task_body(config={"padding": "x" * 1500})
    assert api.post("/runs", body).status_code == 202


def test_a_whole_number_written_as_a_float_is_an_integer(api, task_body):
    response = api.post("/runs", task_body(timeout_seconds=30.0))
    assert response.status_code == 202
    assert response.json()["run"]["timeout_seconds"] == 30


def test_it_refuses_input_nested_too_deeply(api, task_body):
    deep: dict = {}
    for _ in range(100):
        deep = {"d": deep}
    body = task_body(target="task:long-running", input={"steps": 1, "extra": deep})
    error = assert_error(api.post("/runs", body), 422, "validation_error")
    assert error["detail"][0]["field"] == "request.input"
    assert "nested" in error["detail"][0]["message"]


# --- The tasks directory as creates see it -------------------------------------------------------

REQUIRES_N = SIMPLE_TASK.replace(
    "@task",
    "@task(input_schema={'type': 'object', 'required': ['n'], 'properties': {'n': {}}})",
)


@pytest.fixture
def own_tasks(settings, tmp_path):
    settings.STUDIO_TASKS_DIR = tmp_path
    return tmp_path


def test_a_task_added_a_moment_ago_is_found_at_once(api, task_body, own_tasks, monkeypatch):
    monkeypatch.setattr("runs.api.TASKS_SEEN_WITHIN_SECONDS", 60)
    write_task(own_tasks, "first.py")
    assert api.post("/runs", task_body(target="task:first")).status_code == 202
    write_task(own_tasks, "second.py")  # within the minute: not found in the last look
    assert api.post("/runs", task_body(target="task:second")).status_code == 202


def test_an_edited_task_holds_for_creates_once_the_last_look_is_older_than_the_bound(
    api, task_body, own_tasks, monkeypatch
):
    monkeypatch.setattr("runs.api.TASKS_SEEN_WITHIN_SECONDS", 0.05)
    path = write_task(own_tasks, "report.py")
    assert api.post("/runs", task_body(target="task:report")).status_code == 202
    rewrite(path, REQUIRES_N)
    time.sleep(0.06)
    error = assert_error(api.post("/runs", task_body(target="task:report")), 422, "invalid_input")
    assert error["detail"][0]["field"] == "request.input.n"


def test_within_the_bound_creates_go_by_the_last_look(api, task_body, own_tasks, monkeypatch):
    monkeypatch.setattr("runs.api.TASKS_SEEN_WITHIN_SECONDS", 60)
    path = write_task(own_tasks, "report.py")
    assert api.post("/runs", task_body(target="task:report")).status_code == 202
    rewrite(path, REQUIRES_N)
    assert api.post("/runs", task_body(target="task:report")).status_code == 202
    monkeypatch.setattr("runs.api.TASKS_SEEN_WITHIN_SECONDS", 0)  # as every other caller looks
    assert_error(api.post("/runs", task_body(target="task:report")), 422, "invalid_input")
