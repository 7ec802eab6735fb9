from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from runs.models import Run

from .conftest import make_run

pytestmark = pytest.mark.django_db


def test_it_counts_the_last_24_hours_by_status(login, viewer, project):
    make_run(project, status="completed")
    make_run(project, status="completed")
    make_run(project, status="failed", error={"message": "upstream said 503", "code": "task_error"})
    old = make_run(project, status="failed")
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=3))
    response = login(viewer).get("/p/acme/")
    totals = {status: n for status, _, n in response.context["totals"]}
    assert totals["completed"] == 2
    assert totals["failed"] == 1
    assert totals["running"] == 0


def test_it_draws_runs_per_hour_as_svg(login, viewer, project):
    make_run(project, status="completed")
    html = login(viewer).get("/p/acme/").content.decode()
    assert "<svg" in html and 'class="seg seg-completed"' in html
    assert "1 completed" in html  # the bar's tooltip says it in words


def test_it_lists_recent_failures_with_their_message(login, viewer, project):
    run = make_run(
        project,
        status="failed",
        error={"message": "<b>upstream</b> said 503", "code": "task_error"},
    )
    html = login(viewer).get("/p/acme/").content.decode()
    assert f"/p/acme/runs/{run.pk}/" in html
    assert "&lt;b&gt;upstream&lt;/b&gt; said 503" in html


def test_empty_project_says_what_to_do(login, operator):
    html = login(operator).get("/p/acme/").content.decode()
    assert "No runs in the last 24 hours" in html
    assert "No failed runs" in html
