"""Fixtures for the REST API and SDK tests: tokens for the owner, a reader and an outsider, and a
client that talks to /api through Django's whole URL and middleware stack."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from django.test import Client

from runs.models import ApiToken, Project, Run


@pytest.fixture(autouse=True)
def enqueued(request, monkeypatch) -> list[str]:
    """Runs handed to the queue. Tests without a real worker keep the queue out of it."""
    calls: list[str] = []
    if "worker" not in request.fixturenames:
        monkeypatch.setattr("runs.lifecycle.enqueue", lambda run_id, **kw: calls.append(run_id))
    return calls


@pytest.fixture
def secret(project) -> str:
    return ApiToken.issue(project, "ci")[1]


@pytest.fixture
def read_only_secret(project) -> str:
    return ApiToken.issue(project, "dashboard reader", read_only=True)[1]


@pytest.fixture
def outsider_secret(other_project) -> str:
    return ApiToken.issue(other_project, "outsider ci")[1]


@dataclass
class ApiClient:
    """Django's test Client with a bearer token and JSON bodies by default."""

    token: str | None
    client: Client = field(default_factory=Client)

    def _headers(self, token):
        token = self.token if token is ... else token
        return {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

    def get(self, path: str, params: dict | None = None, *, token=...):
        return self.client.get(f"/api{path}", params or {}, **self._headers(token))

    def post(self, path: str, body=None, *, raw: bytes | str | None = None, token=..., **extra):
        data = raw if raw is not None else ("" if body is None else json.dumps(body))
        return self.client.post(
            f"/api{path}", data, content_type="application/json", **self._headers(token), **extra
        )


@pytest.fixture
def api(secret) -> ApiClient:
    return ApiClient(secret)


@pytest.fixture
def task_body(project):
    """A valid create body for task:sync-data; pass overrides for the request part."""

    def make(**request):
        return {
            "kind": "task",
            "owner": {"kind": "project", "id": str(project.id)},
            "request": {"target": "task:sync-data", **request},
        }

    return make


def make_run(project: Project, **fields) -> Run:
    """A run stored directly, for reads that need no queue (statuses set as a worker would)."""
    fields.setdefault("target", "task:sync-data")
    return Run.objects.create(project=project, **fields)


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is `status` with the API's error shape; returns the error object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "code", "detail"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]
