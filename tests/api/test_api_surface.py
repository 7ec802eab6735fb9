"""The API as a whole: its schema, its docs page, and the error shape on every path."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from .conftest import assert_error

pytestmark = pytest.mark.django_db


def test_it_serves_an_openapi_schema_of_every_endpoint():
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/events",
        "/api/runs/{run_id}/cancel",
        "/api/runs/{run_id}/rerun",
        "/api/projects/{ref}",
        "/api/projects/{ref}/runs",
        "/api/projects/{ref}/tasks",
        "/api/projects/{ref}/tasks/{task_id}",
        "/api/projects/{ref}/webhooks",
        "/api/projects/{ref}/webhooks/{webhook_id}",
        "/api/projects/{ref}/webhooks/{webhook_id}/rotate-secret",
        "/api/projects/{ref}/webhooks/{webhook_id}/deliveries",
        "/api/projects/{ref}/notifications",
        "/api/projects/{ref}/notifications/{notification_id}",
        "/api/projects/{ref}/notifications/{notification_id}/attempts",
        "/api/projects/{ref}/schedules",
        "/api/projects/{ref}/schedules/{schedule_id}",
        "/api/projects/{ref}/schedules/{schedule_id}/pause",
        "/api/projects/{ref}/schedules/{schedule_id}/resume",
        "/api/projects/{ref}/schedules/{schedule_id}/trigger",
        "/api/projects/{ref}/schedules/{schedule_id}/occurrences",
        "/api/projects/{ref}/schedules/{schedule_id}/runs",
        "/api/projects/{ref}/schedules/{schedule_id}/preview",
        "/api/projects/{ref}/workflows",
        "/api/projects/{ref}/workflows/{workflow_id}",
        "/api/runs/{run_id}/steps",
        "/api/runs/{run_id}/approvals",
        "/api/runs/{run_id}/approvals/{step_id}",
        "/api/runs/{run_id}/signal",
        "/api/projects/{ref}/runs/cancel",
        "/api/projects/{ref}/runs/rerun",
        "/api/projects/{ref}/operations/{operation_id}",
    }
    assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"
    assert "202" in schema["paths"]["/api/runs"]["post"]["responses"]


def test_it_serves_interactive_docs_that_need_no_internet(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert not asset.startswith(("http://", "https://", "//")), asset
        assert client.get(asset).status_code == 200, asset


def test_unknown_api_paths_answer_json_404(api):
    assert_error(api.get("/no/such/thing"), 404, "not_found")
    assert_error(api.get("/no/such/thing", token=None), 404, "not_found")


def test_a_wrong_method_answers_json_405(api):
    response = api.client.delete("/api/runs")
    error = assert_error(response, 405, "method_not_allowed")
    assert "DELETE" in error["message"]
    assert "POST" in response["Allow"]


def test_an_unexpected_failure_answers_json_500(api, monkeypatch):
    def explode():
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("runs.api.discover", explode)
    api.client.raise_request_exception = False
    error = assert_error(api.get("/projects/acme/tasks"), 500, "internal_error")
    assert "disk on fire" not in error["message"]  # no internals leak to clients
