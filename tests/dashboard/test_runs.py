from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from runs.models import Run
from runs.models.paging import Position

from .conftest import make_run

pytestmark = pytest.mark.django_db


def test_it_lists_runs_newest_first(login, viewer, project, other_project):
    first = make_run(project, status="completed", name="first")
    second = make_run(project, status="failed", name="second")
    theirs = make_run(other_project, name="theirs")
    html = login(viewer).get("/p/acme/runs/").content.decode()
    assert html.index(second.pk) < html.index(first.pk)
    assert theirs.pk not in html
    assert "badge-failed" in html and ">Failed<" in html


def test_keyset_pages_walk_every_run_once(login, viewer, project, monkeypatch):
    monkeypatch.setattr("studio.dashboard.views.runs.PAGE_SIZE", 3)
    now = timezone.now()
    runs = [make_run(project, status="completed") for _ in range(7)]
    # Two runs share a timestamp: the id breaks the tie.
    for i, run in enumerate(runs):
        Run.objects.filter(pk=run.pk).update(created_at=now - dt.timedelta(minutes=i // 2))
    client = login(viewer)
    seen, url = [], "/p/acme/runs/"
    while url:
        response = client.get(url)
        seen += [r.pk for r in response.context["runs"]]
        older = response.context["older"]
        url = f"/p/acme/runs/?before={older}" if older else None
    assert sorted(seen) == sorted(r.pk for r in runs) and len(seen) == 7
    # And back again from the last page.
    response = client.get(
        f"/p/acme/runs/?after={response.context['runs'][0] and _cursor(response.context['runs'][0])}"
    )
    assert len(response.context["runs"]) == 3


def _cursor(run):
    return Position.of(run).token()


def test_filters_by_status_task_trigger_and_dates(login, viewer, project):
    failed = make_run(project, status="failed", target="task:failing-task")
    done = make_run(project, status="completed", target="task:sync-data", trigger_kind="api")
    old = make_run(project, status="completed", target="task:sync-data")
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=10))
    client = login(viewer)

    def ids(query):
        return {r.pk for r in client.get(f"/p/acme/runs/?{query}").context["runs"]}

    assert ids("status=failed") == {failed.pk}
    assert ids("status=active") == set()
    assert ids("target=task:sync-data") == {done.pk, old.pk}
    assert ids("trigger=api") == {done.pk}
    today = timezone.now().date()
    assert ids(f"since={today - dt.timedelta(days=1)}") == {failed.pk, done.pk}
    assert ids(f"until={today - dt.timedelta(days=5)}") == {old.pk}


def test_search_matches_id_name_target_and_input(login, viewer, project):
    a = make_run(
        project,
        status="completed",
        target="task:onboard-customer",
        input={
            "company": "Zanzibar Trading",
            "email": "z@z.example",
            "plan": "pro",
            "start_date": "2025-01-01",
        },
    )
    b = make_run(project, status="completed", name="Nightly sync")
    client = login(viewer)

    def ids(q):
        return {r.pk for r in client.get("/p/acme/runs/", {"q": q}).context["runs"]}

    assert ids("zanzibar") == {a.pk}
    assert ids("nightly") == {b.pk}
    assert ids(a.pk) == {a.pk}
    assert ids(a.pk[4:14]) == {a.pk}
    assert ids("onboard-customer") == {a.pk}


def test_invalid_filters_are_reported_not_crashed(login, viewer):
    response = login(viewer).get("/p/acme/runs/?status=exploded&before=nonsense")
    assert response.status_code == 400
    assert "Some filters were not understood" in response.content.decode()
    response = login(viewer).get("/p/acme/runs/?since=2025-02-02&until=2025-01-01")
    assert "Must not be before the start date." in response.content.decode()


def test_filters_survive_in_the_form(login, viewer, project):
    html = login(viewer).get("/p/acme/runs/?status=failed&q=abc").content.decode()
    assert '<option value="failed" selected>' in html
    assert 'value="abc"' in html


def test_active_rows_poll_and_finished_rows_do_not(login, viewer, project):
    running = make_run(project, status="running")
    done = make_run(project, status="completed")
    html = login(viewer).get("/p/acme/runs/").content.decode()
    poller = html.split('id="rows-poller"')[1].split(">")[0]
    assert running.pk in poller and done.pk not in poller and 'hx-trigger="every 2s"' in poller


def test_row_refresh_returns_fresh_rows_and_stops_when_all_finished(
    login, viewer, project, other_project
):
    running = make_run(project, status="running")
    theirs = make_run(other_project, status="running")
    client = login(viewer)
    url = f"/p/acme/runs/?refresh=1&ids={running.pk},{theirs.pk}"
    html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert f'id="row-{running.pk}" hx-swap-oob="true"' in html
    assert theirs.pk not in html.split("<tr")[1] if "<tr" in html else True
    assert "every 2s" in html
    Run.objects.filter(pk=running.pk).update(
        status="completed", completed_at=timezone.now(), duration_ms=1200
    )
    html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert ">Completed<" in html and "1.2 s" in html
    assert "every 2s" not in html  # nothing left to watch: the poller is replaced by a quiet one
    assert theirs.pk not in html


def test_empty_states(login, operator, project):
    html = login(operator).get("/p/acme/runs/").content.decode()
    assert "No runs yet" in html and "launch your first run" in html
    make_run(project, status="completed")
    html = login(operator).get("/p/acme/runs/?status=failed").content.decode()
    assert "No runs match these filters" in html
