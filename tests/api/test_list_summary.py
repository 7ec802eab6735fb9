"""GET /api/projects/{ref}/runs?fields=summary: a page without the big columns."""

from __future__ import annotations

import pytest

from runs.models import Run

from .conftest import assert_error, make_run
from .test_create_run import RUN_KEYS

pytestmark = pytest.mark.django_db

BIG = ("logs", "input", "output", "config")


@pytest.fixture
def chatty_run(project) -> Run:
    return make_run(
        project,
        status=Run.Status.FAILED,
        input={"limit": 3},
        config={"batchSize": 100},
        output={"partial": True},
        logs="line\n" * 1000,
        error={"message": "cannot sync", "code": "exception", "detail": None},
    )


def test_a_summary_sends_the_big_columns_as_null_and_keeps_the_rest(api, chatty_run):
    response = api.get("/projects/acme/runs", {"fields": "summary"})
    assert response.status_code == 200
    (run,) = response.json()["data"]
    assert set(run) == RUN_KEYS
    assert {key: run[key] for key in BIG} == dict.fromkeys(BIG)
    assert run["error"] == {"message": "cannot sync", "code": "exception", "detail": None}
    assert run["run_id"] == chatty_run.pk and run["status"] == "failed"


@pytest.mark.parametrize("params", [{}, {"fields": "full"}])
def test_the_default_stays_the_full_shape(api, chatty_run, params):
    (run,) = api.get("/projects/acme/runs", params).json()["data"]
    assert run["input"] == {"limit": 3}
    assert run["config"] == {"batchSize": 100}
    assert run["output"] == {"partial": True}
    assert run["logs"] == chatty_run.logs


def test_a_page_of_chatty_runs_stays_small(api, project):
    for _ in range(20):
        make_run(project, logs="x" * 10_000, input={"blob": "y" * 5_000})
    full = api.get("/projects/acme/runs", {"limit": 20})
    summary = api.get("/projects/acme/runs", {"limit": 20, "fields": "summary"})
    assert len(full.content) > 300_000
    assert len(summary.content) < 40_000


def test_a_summary_pages_like_the_full_list(api, project):
    for _ in range(3):
        make_run(project)
    first = api.get("/projects/acme/runs", {"fields": "summary", "limit": 2}).json()
    second = api.get(
        "/projects/acme/runs",
        {"fields": "summary", "limit": 2, "cursor": first["page_info"]["next"]},
    ).json()
    assert len(first["data"]) == 2 and len(second["data"]) == 1
    assert second["data"][0]["input"] is None


@pytest.mark.parametrize("value", ["everything", "", "SUMMARY"])
def test_it_refuses_an_unknown_fields_value(api, value):
    error = assert_error(api.get("/projects/acme/runs", {"fields": value}), 422)
    assert "fields" in error["message"]


def test_a_read_only_token_reads_the_summary(api, chatty_run, read_only_secret):
    response = api.get("/projects/acme/runs", {"fields": "summary"}, token=read_only_secret)
    assert response.status_code == 200
    assert response.json()["data"][0]["logs"] is None


def test_another_projects_token_gets_404_and_no_token_401(api, chatty_run, outsider_secret):
    assert_error(api.get("/projects/acme/runs", {"fields": "summary"}, token=outsider_secret), 404)
    assert_error(api.get("/projects/acme/runs", {"fields": "summary"}, token=None), 401)
