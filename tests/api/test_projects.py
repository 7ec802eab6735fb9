"""GET /api/projects/{ref}, /tasks and /tasks/{id}."""

from __future__ import annotations

import pytest

from .conftest import assert_error

pytestmark = pytest.mark.django_db


def test_it_shows_the_tokens_project(api, project):
    for ref in ("acme", str(project.id)):
        assert api.get(f"/projects/{ref}").json() == {
            "id": str(project.id),
            "slug": "acme",
            "name": "Acme",
        }


def test_it_lists_the_tasks_it_can_run(api):
    response = api.get("/projects/acme/tasks")
    assert response.status_code == 200
    tasks = {t["id"]: t for t in response.json()["data"]}
    assert {
        "sync-data",
        "failing-task",
        "long-running",
        "onboard-customer",
        "reports-weekly",
    } <= set(tasks)
    sync = tasks["sync-data"]
    assert set(sync) == {
        "id",
        "name",
        "description",
        "schedulable",
        "input_schema",
        "output_schema",
    }
    assert sync["name"] == "Sync external data"
    assert sync["schedulable"] is True
    assert sync["input_schema"]["properties"]["limit"]["minimum"] == 1


def test_it_shows_one_task(api):
    task = api.get("/projects/acme/tasks/onboard-customer").json()
    assert task["id"] == "onboard-customer"
    assert "email" in task["input_schema"]["required"]
    assert task["output_schema"] == {"type": "object", "required": ["account_id"]}


def test_it_answers_404_for_an_unknown_task(api):
    error = assert_error(api.get("/projects/acme/tasks/nope"), 404, "not_found")
    assert "nope" in error["message"]


def test_it_hides_tasks_behind_another_project(api, outsider_secret):
    assert_error(api.get("/projects/acme/tasks", token=outsider_secret), 404, "not_found")
    assert_error(api.get("/projects/acme/tasks/sync-data", token=outsider_secret), 404, "not_found")
    assert_error(api.get("/projects/acme", token=outsider_secret), 404, "not_found")
