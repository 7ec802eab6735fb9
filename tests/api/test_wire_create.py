"""POST /api/runs with the fields the Veryfront SDK sends: runtime targets and start_mode."""

from __future__ import annotations

import importlib

import pytest

from runs.models import Run

from .conftest import assert_error, make_run

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", [None, "main_branch"])
def test_it_accepts_and_echoes_the_main_branch_runtime_target(api, task_body, kind):
    body = task_body(
        runtime_target_kind=kind,
        runtime_target_environment_id=None,
        runtime_target_branch_id=None,
    )
    response = api.post("/runs", body)
    assert response.status_code == 202, response.content
    run = response.json()["run"]
    assert run["runtime_target_kind"] == kind
    assert run["runtime_target_environment_id"] is None
    assert run["runtime_target_branch_id"] is None
    assert Run.objects.get(pk=run["run_id"]).runtime_target_kind == kind
    assert api.get(f"/runs/{run['run_id']}").json()["runtime_target_kind"] == kind


def test_it_accepts_what_the_sdk_sends_for_create_task_run_with_main_branch(api, project):
    # What createTaskRun({projectId, target, runtimeTargetKind: "main_branch"}) puts on the wire
    # (JSON.stringify drops the undefined keys).
    body = {
        "kind": "task",
        "owner": {"kind": "project", "id": str(project.id)},
        "request": {"target": "task:sync-data", "runtime_target_kind": "main_branch"},
    }
    response = api.post("/runs", body)
    assert response.status_code == 202, response.content
    assert response.json()["run"]["runtime_target_kind"] == "main_branch"


@pytest.mark.parametrize(
    "request_part, field",
    [
        ({"runtime_target_kind": "environment"}, "request.runtime_target_kind"),
        ({"runtime_target_kind": "preview_branch"}, "request.runtime_target_kind"),
        ({"runtime_target_kind": "moon"}, "request.runtime_target_kind"),
        ({"runtime_target_environment_id": "env_1"}, "request.runtime_target_environment_id"),
        (
            {"runtime_target_kind": "main_branch", "runtime_target_branch_id": "br_1"},
            "request.runtime_target_branch_id",
        ),
    ],
)
def test_it_refuses_runtime_targets_studio_does_not_have(api, task_body, request_part, field):
    error = assert_error(
        api.post("/runs", task_body(**request_part)), 422, "runtime_target_unsupported"
    )
    assert field in error["message"]
    assert field in [e["field"] for e in error["detail"]]
    assert not Run.objects.exists()


def test_it_names_every_unsupported_runtime_field(api, task_body):
    body = task_body(
        runtime_target_kind="environment",
        runtime_target_environment_id="env_1",
        runtime_target_branch_id="br_1",
    )
    error = assert_error(api.post("/runs", body), 422, "runtime_target_unsupported")
    assert {e["field"] for e in error["detail"]} == {
        "request.runtime_target_kind",
        "request.runtime_target_environment_id",
        "request.runtime_target_branch_id",
    }


def test_it_refuses_a_runtime_target_that_is_not_a_string(api, task_body):
    error = assert_error(
        api.post("/runs", task_body(runtime_target_kind=3)), 422, "validation_error"
    )
    assert error["detail"][0]["field"] == "request.runtime_target_kind"


def test_it_stores_and_echoes_start_mode(api, task_body):
    response = api.post("/runs", task_body(start_mode="immediate"))
    assert response.status_code == 202, response.content
    run = response.json()["run"]
    assert run["start_mode"] == "immediate"
    assert Run.objects.get(pk=run["run_id"]).start_mode == "immediate"
    assert api.get(f"/runs/{run['run_id']}").json()["start_mode"] == "immediate"


def test_start_mode_is_null_when_not_given(api, task_body):
    assert api.post("/runs", task_body()).json()["run"]["start_mode"] is None


def test_it_refuses_a_start_mode_longer_than_its_column(api, task_body):
    limit = Run._meta.get_field("start_mode").max_length
    assert api.post("/runs", task_body(start_mode="x" * limit)).status_code == 202
    error = assert_error(
        api.post("/runs", task_body(start_mode="y" * (limit + 1))), 422, "validation_error"
    )
    assert {"field": "request.start_mode", "rule": "string_too_long"} in [
        {"field": e["field"], "rule": e["rule"]} for e in error["detail"]
    ]
    assert Run.objects.count() == 1


# --- error.code: always a non-empty string on the wire ----------------------------------------


@pytest.mark.parametrize(
    "stored, wire",
    [
        ({"message": "boom", "code": None, "detail": None}, {"message": "boom", "code": "error"}),
        ({"message": "boom", "code": "", "detail": None}, {"message": "boom", "code": "error"}),
        ({"message": None, "code": "exception"}, {"message": "", "code": "exception"}),
        ("a bare string", {"message": "a bare string", "code": "error"}),
    ],
)
def test_a_stored_error_always_has_a_string_code_and_message(api, project, stored, wire):
    run = make_run(project, status=Run.Status.FAILED, error=stored)
    error = api.get(f"/runs/{run.pk}").json()["error"]
    assert {k: error[k] for k in ("message", "code")} == wire


def test_migration_0003_gives_stored_errors_a_code(project):
    from django.apps import apps

    fill_error_codes = importlib.import_module("runs.migrations.0003_wire").fill_error_codes
    null_code = make_run(project, error={"message": "old", "code": None, "detail": {"x": 1}})
    no_code = make_run(project, error={"message": "older"})
    bare = make_run(project, error="oldest")
    fine = make_run(project, error={"message": "ok", "code": "exception", "detail": None})
    none = make_run(project, error=None)
    fill_error_codes(apps, None)
    for run in (null_code, no_code, bare, fine, none):
        run.refresh_from_db()
    assert null_code.error == {"message": "old", "code": "error", "detail": {"x": 1}}
    assert no_code.error == {"message": "older", "code": "error"}
    assert bare.error == {"message": "oldest", "code": "error", "detail": None}
    assert fine.error == {"message": "ok", "code": "exception", "detail": None}
    assert none.error is None
