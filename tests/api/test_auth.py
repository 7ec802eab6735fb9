"""Bearer tokens: who may call the API at all, and who may write."""

from __future__ import annotations

import pytest
from django.utils import timezone

from runs.models import ApiToken, Run

from .conftest import assert_error, make_run

pytestmark = pytest.mark.django_db

READ_PATHS = [
    "/runs/{run}",
    "/runs/{run}/events",
    "/projects/acme",
    "/projects/acme/runs",
    "/projects/acme/tasks",
    "/projects/acme/tasks/sync-data",
]
WRITE_PATHS = ["/runs/{run}/cancel", "/runs/{run}/rerun"]


@pytest.fixture
def run(project):
    return make_run(project)


@pytest.mark.parametrize("path", READ_PATHS + WRITE_PATHS)
def test_it_refuses_a_request_without_a_token(api, run, path):
    call = api.post if path in WRITE_PATHS else api.get
    response = call(path.format(run=run.pk), token=None)
    error = assert_error(response, 401, "unauthorized")
    assert "token" in error["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_create_without_a_token(api, task_body):
    assert_error(api.post("/runs", task_body(), token=None), 401, "unauthorized")
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer stu_0000000000000000000000000000",
        "Bearer nonsense",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer stu_00000000\x00000000000000000000",
    ],
)
def test_it_refuses_unknown_tokens_and_other_schemes(api, run, header):
    response = api.client.get(f"/api/runs/{run.pk}", HTTP_AUTHORIZATION=header)
    assert_error(response, 401, "unauthorized")


def test_it_refuses_a_token_with_a_right_prefix_and_wrong_secret(api, run, secret):
    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    assert_error(api.get(f"/runs/{run.pk}", token=forged), 401, "unauthorized")


def test_it_refuses_a_revoked_token(api, run, secret):
    ApiToken.objects.get().revoke()
    assert_error(api.get(f"/runs/{run.pk}", token=secret), 401, "unauthorized")


def test_it_records_when_a_token_was_last_used(api, run):
    assert ApiToken.objects.get().last_used_at is None
    assert api.get(f"/runs/{run.pk}").status_code == 200
    assert ApiToken.objects.get().last_used_at is not None


def test_it_lets_a_read_only_token_read(api, run, read_only_secret):
    for path in READ_PATHS:
        response = api.get(path.format(run=run.pk), token=read_only_secret)
        assert response.status_code == 200, (path, response.content)


def test_it_refuses_writes_with_a_read_only_token(api, run, read_only_secret, task_body):
    error = assert_error(
        api.post("/runs", task_body(), token=read_only_secret), 403, "read_only_token"
    )
    assert "read-only" in error["message"]
    for path in WRITE_PATHS:
        assert_error(
            api.post(path.format(run=run.pk), token=read_only_secret), 403, "read_only_token"
        )
    assert Run.objects.count() == 1
    run.refresh_from_db()
    assert run.status == Run.Status.PENDING


def test_it_answers_403_to_a_read_only_token_even_for_an_invalid_body(api, read_only_secret):
    assert_error(api.post("/runs", raw="{not json", token=read_only_secret), 403, "read_only_token")


@pytest.mark.parametrize("path", READ_PATHS + WRITE_PATHS)
def test_it_hides_another_projects_run_and_project(api, run, outsider_secret, path):
    call = api.post if path in WRITE_PATHS else api.get
    assert_error(call(path.format(run=run.pk), token=outsider_secret), 404, "not_found")


def test_an_outsider_cannot_cancel_a_run(api, run, outsider_secret):
    api.post(f"/runs/{run.pk}/cancel", token=outsider_secret)
    run.refresh_from_db()
    assert run.status == Run.Status.PENDING and run.cancel_requested_at is None


def test_another_projects_run_looks_exactly_like_a_missing_one(api, run, outsider_secret):
    hidden = api.get(f"/runs/{run.pk}", token=outsider_secret)
    missing = api.get(f"/runs/run_{'0' * 32}", token=outsider_secret)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["code"] == missing.json()["error"]["code"]


def test_it_refuses_to_create_a_run_for_another_project(api, other_project, task_body):
    body = task_body()
    body["owner"]["id"] = str(other_project.id)
    assert_error(api.post("/runs", body), 404, "not_found")
    assert not Run.objects.exists()


def test_it_does_not_reveal_a_revoked_token_differs_from_an_unknown_one(api, run, secret):
    ApiToken.objects.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    revoked = api.get(f"/runs/{run.pk}", token=secret)
    unknown = api.get(f"/runs/{run.pk}", token="stu_ffffffffxxxxxxxxxxxxxxxxxxxx")
    assert revoked.json() == unknown.json()
