from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import Run, RunEvent

from .conftest import log, make_run

pytestmark = pytest.mark.django_db


def test_it_shows_the_runs_facts(login, viewer, project):
    run = make_run(
        project,
        status="failed",
        exit_code=1,
        input={"steps": 3},
        config={"region": "eu"},
        error={
            "message": "cannot sync",
            "code": "task_error",
            "detail": "Traceback (most recent call last):\n  boom",
        },
    )
    html = login(viewer).get(f"/p/acme/runs/{run.pk}/").content.decode()
    assert ">Failed<" in html
    assert "task:long-running" in html and "Manual" in html
    assert "5.0 s" in html  # duration
    assert "<code>1</code>" in html  # exit code
    assert "cannot sync" in html and "Traceback (most recent call last):" in html
    assert "&quot;steps&quot;: 3" in html and "&quot;region&quot;: &quot;eu&quot;" in html
    assert 'datetime="' in html and 'title="20' in html  # relative time with the exact one on hover


def test_task_output_is_escaped(login, viewer, project):
    run = make_run(
        project,
        status="completed",
        output={"html": "<script>alert(2)</script>"},
        events=[
            log("<script>alert(1)</script>", "stderr"),
            ("custom.thing", {"x": "<img src=x onerror=alert(3)>"}),
        ],
    )
    html = login(viewer).get(f"/p/acme/runs/{run.pk}/").content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


def test_stdout_and_stderr_are_told_apart(login, viewer, project):
    run = make_run(project, status="running", events=[log("fine"), log("bad", "stderr")])
    html = login(viewer).get(f"/p/acme/runs/{run.pk}/").content.decode()
    assert 'class="ev ev-log ev-stdout"' in html and 'class="stream stream-stdout">out<' in html
    assert 'class="ev ev-log ev-stderr"' in html and 'class="stream stream-stderr">err<' in html


def test_progress_is_drawn_as_a_bar(login, viewer, project):
    run = make_run(
        project,
        status="running",
        events=[("progress", {"current": 3, "total": 12, "message": "item 3"})],
    )
    html = login(viewer).get(f"/p/acme/runs/{run.pk}/").content.decode()
    assert '<progress class="progress" aria-label="Progress" max="12" value="3">' in html
    assert "style=" not in html  # a Content-Security-Policy forbids inline styles
    assert "item 3" in html


def test_a_long_log_opens_at_its_end_with_load_earlier(login, viewer, project):
    run = make_run(project, status="running")
    RunEvent.objects.bulk_create(
        [
            RunEvent(run=run, event_type="log", payload={"stream": "stdout", "line": f"line {i}"})
            for i in range(450)
        ]
    )
    client = login(viewer)
    html = client.get(f"/p/acme/runs/{run.pk}/").content.decode()
    assert html.count('class="ev ') == 200
    assert "line 449" in html and "line 249" not in html.replace("line 2490", "")
    assert "Load earlier events" in html
    earliest = int(html.split("?before=")[1].split('"')[0])
    earlier = client.get(
        f"/p/acme/runs/{run.pk}/?before={earliest}", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert earlier.count('class="ev ') == 200 and "<html" not in earlier
    assert "Load earlier events" in earlier  # still more (the run.created event and lines 0-49)
    # Without JavaScript the link opens a page of history.
    page = client.get(f"/p/acme/runs/{run.pk}/?before={earliest}").content.decode()
    assert "Showing part of the log" in page and "every 1s" not in page  # no lines added here


def test_live_log_polls_only_while_the_run_is_active(login, viewer, project):
    client = login(viewer)
    active = make_run(project, status="running", events=[log("hello")])
    html = client.get(f"/p/acme/runs/{active.pk}/").content.decode()
    last = RunEvent.objects.filter(run=active).order_by("-id").first().pk
    assert f'events/?after={last}" hx-trigger="every 1s"' in html
    finished = make_run(project, status="completed", events=[log("done")])
    assert 'id="log-poller"' not in client.get(f"/p/acme/runs/{finished.pk}/").content.decode()


def test_a_poll_of_a_quiet_run_is_one_indexed_query_and_no_content(login, viewer, project):
    run = make_run(project, status="running", events=[log("hello")])
    last = RunEvent.objects.filter(run=run).order_by("-id").first().pk
    client = login(viewer)
    client.get("/p/acme/")  # warm the session
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/p/acme/runs/{run.pk}/events/?after={last}", HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    event_queries = [q["sql"] for q in queries.captured_queries if "runs_runevent" in q["sql"]]
    assert len(event_queries) == 1
    assert (
        "runs_run" in [q["sql"] for q in queries.captured_queries if "runs_runevent" in q["sql"]][0]
    )
    assert not [q for q in queries.captured_queries if 'FROM "runs_run" ' in q["sql"]]


def test_a_poll_appends_new_events_and_stops_when_the_run_ends(login, viewer, project):
    run = make_run(project, status="running", events=[log("one")])
    last = RunEvent.objects.filter(run=run).order_by("-id").first().pk
    client = login(viewer)
    RunEvent.objects.create(run=run, event_type="log", payload={"stream": "stdout", "line": "two"})
    html = client.get(
        f"/p/acme/runs/{run.pk}/events/?after={last}", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "two" in html and "one" not in html
    assert 'hx-trigger="every 1s"' in html and 'id="run-summary"' not in html

    Run.objects.filter(pk=run.pk).update(
        status="completed", completed_at=timezone.now(), output={"ok": True}
    )
    RunEvent.objects.create(run=run, event_type="run.completed", payload={"output": {"ok": True}})
    html = client.get(
        f"/p/acme/runs/{run.pk}/events/?after={last}", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'id="run-summary" class="run-summary" hx-swap-oob="true"' in html
    assert ">Completed<" in html and "&quot;ok&quot;: true" in html
    assert 'id="log-poller"' not in html  # no new poller: polling stops


def test_poll_of_another_projects_run_shows_nothing(login, viewer, other_project):
    theirs = make_run(other_project, status="running", events=[log("secret")])
    response = login(viewer).get(
        f"/p/acme/runs/{theirs.pk}/events/?after=0", HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 204
    assert login(viewer).get(f"/p/acme/runs/{theirs.pk}/").status_code == 404


def test_cancel_a_pending_run_ends_it_at_once(login, operator, project):
    run = make_run(project, status="pending")
    response = login(operator).post(f"/p/acme/runs/{run.pk}/cancel/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_cancel_a_running_run_shows_cancelling(login, operator, project):
    run = make_run(project, status="running")
    html = (
        login(operator)
        .post(f"/p/acme/runs/{run.pk}/cancel/", HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert ">Cancelling<" in html and "waiting for the worker" in html
    assert "Yes, cancel run" not in html
    run.refresh_from_db()
    assert run.status == "running" and run.cancel_requested_at is not None
    page = login(operator).get(f"/p/acme/runs/{run.pk}/").content.decode()
    assert ">Cancelling<" in page


def test_cancel_a_finished_run_says_so(login, operator, project):
    run = make_run(project, status="completed")
    response = login(operator).post(f"/p/acme/runs/{run.pk}/cancel/", follow=True)
    assert "already finished" in response.content.decode()


def test_cancel_needs_confirmation_and_rerun_links_to_the_prefilled_form(
    login, operator, viewer, project
):
    run = make_run(project, status="running")
    html = login(operator).get(f"/p/acme/runs/{run.pk}/").content.decode()
    assert ">Cancel run</summary>" in html
    assert "Yes, cancel run" in html
    assert f'/p/acme/tasks/long-running/?rerun={run.pk}"' in html
    html = login(viewer).get(f"/p/acme/runs/{run.pk}/").content.decode()
    assert ">Cancel run</summary>" not in html and "?rerun=" not in html


def test_raw_log_is_plain_text(login, viewer, project):
    run = make_run(project, status="completed", logs="<b>hello</b>\n")
    response = login(viewer).get(f"/p/acme/runs/{run.pk}/logs.txt")
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"<b>hello</b>\n"
