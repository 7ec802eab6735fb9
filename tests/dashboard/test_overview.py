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


def test_empty_project_says_how_to_get_started(login, operator, owner):
    html = login(operator).get("/p/acme/").content.decode()
    assert "how to get started" in html and "No failed runs" not in html
    assert "Write a task" in html and "Launch it" in html and "Make an API token" in html
    assert "No runs in the last 24 hours" not in html
    assert "/p/acme/tasks/" in html and "/p/acme/tokens/" not in html  # operators cannot
    assert "/p/acme/tokens/" in login(owner).get("/p/acme/").content.decode()


def test_a_project_with_only_old_runs_says_so(login, operator, project):
    import datetime as dt

    from django.utils import timezone

    make_run(project, status="completed", created_at=timezone.now() - dt.timedelta(days=3))
    html = login(operator).get("/p/acme/").content.decode()
    assert "No runs in the last 24 hours" in html and "how to get started" not in html


def test_recent_failures_are_grouped_by_message(login, viewer, project):
    for target in ("task:sync-data", "task:sync-data", "task:failing-task"):
        make_run(project, status="failed", target=target, error={"message": "upstream 503"})
    make_run(project, status="failed", error={"message": "disk full"})
    html = login(viewer).get("/p/acme/").content.decode()
    group = html.split("upstream 503")[1].split("</li>")[0]
    assert "<code>task:sync-data</code>" in group and "<code>task:failing-task</code>" in group
    assert '>3<span class="sr-only"> failed runs</span>' in group
    assert html.index("upstream 503") < html.index("disk full")  # most frequent first


def test_a_404_keeps_the_project_tabs_and_lists_the_users_projects(
    login, viewer, project, other_project
):
    client = login(viewer)
    response = client.get("/p/acme/runs/run_" + "0" * 32 + "/")
    html = response.content.decode()
    assert response.status_code == 404
    assert 'aria-label="Project"' in html and 'href="/p/acme/runs/" aria-current="page"' in html
    assert "Your projects" in html and 'href="/p/acme/"' in html
    assert "Outsider Inc" not in html


def test_a_404_in_someone_elses_project_shows_no_tabs(login, outsider, project):
    html = login(outsider).get("/p/acme/runs/").content.decode()
    assert 'aria-label="Project"' not in html and "Acme" not in html
    assert "Outsider Inc" in html  # their own projects
