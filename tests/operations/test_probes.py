"""/healthz and /readyz: fast, unauthenticated, any Host, nothing but ok / not ok per check."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection
from django.db.migrations.executor import MigrationExecutor

from studio import probes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_migration_check():
    probes._migrations_ok_until[0] = 0.0
    yield
    probes._migrations_ok_until[0] = 0.0


def test_healthz_answers_ok_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_ignore_allowed_hosts(client, path):
    # A load balancer calls by IP or an internal name that is not in ALLOWED_HOSTS.
    response = client.get(path, HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200


def test_other_pages_still_check_the_host(client):
    assert client.get("/api/docs", HTTP_HOST="10.1.2.3:8000").status_code == 400


def test_readyz_reports_each_check(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "queue": "ok"},
    }


def _assert_not_ready(response, failing: set[str]) -> None:
    assert response.status_code == 503
    assert response["Retry-After"]
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    checks = error["detail"]["checks"]
    assert {name for name, value in checks.items() if value != "ok"} == failing
    assert set(checks.values()) <= {"ok", "not ok"}  # no driver message, host or version leaks


def test_readyz_is_503_with_unapplied_migrations(client, monkeypatch):
    monkeypatch.setattr(
        MigrationExecutor, "migration_plan", lambda self, targets: [("runs", "9999_new")]
    )
    _assert_not_ready(client.get("/readyz"), {"migrations"})


def test_readyz_is_503_when_the_database_is_unreachable(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused by 10.0.0.5:5432 (secret detail)")

    monkeypatch.setattr(connection, "cursor", refuse)
    response = client.get("/readyz")
    _assert_not_ready(response, {"database", "migrations"})
    assert b"10.0.0.5" not in response.content and b"secret" not in response.content


def test_readyz_is_503_when_the_queue_is_unreachable(client, monkeypatch):
    from django.conf import settings
    from huey.contrib.djhuey import HUEY

    def down(*args, **kwargs):
        raise ConnectionError("queue down")

    if settings.REDIS_URL:
        import redis

        monkeypatch.setattr(redis.Redis, "ping", down)
    else:
        monkeypatch.setattr(HUEY, "pending_count", down)
    _assert_not_ready(client.get("/readyz"), {"queue"})


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_take_only_get(client, path):
    response = client.post(path)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_the_api_answers_503_with_retry_after_when_the_database_is_away(
    client, project, monkeypatch
):
    from runs.models import ApiToken

    secret = ApiToken.issue(project, "ci")[1]

    def refuse(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(connection, "cursor", refuse)
    response = client.get("/api/projects/acme/runs", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "service_unavailable"
