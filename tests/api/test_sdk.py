"""The Python SDK (runs.client) against a live Studio server."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from runs.client import Accepted, Event, Run, RunsClient, RunsError, RunsWaitTimeout
from runs.models import Run as RunModel
from runs.models import RunEvent

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def runs(live_server, secret):
    with RunsClient(
        api_url=f"{live_server.url}/api", auth_token=secret, project_reference="acme"
    ) as client:
        yield client


def test_it_creates_a_task_run_with_typed_results(runs, project):
    accepted = runs.create_task_run(
        project_id=str(project.id),
        name="Sync data",
        target="task:sync-data",
        config={"batchSize": 100},
    )
    assert isinstance(accepted, Accepted)
    assert accepted.accepted is True and accepted.duplicate is False
    run = accepted.run
    assert isinstance(run, Run)
    assert run.run_id.startswith("run_") and run.status == "pending"
    assert run.owner.id == str(project.id)
    assert run.config == {"batchSize": 100}
    assert isinstance(run.created_at, datetime) and run.created_at.tzinfo is not None
    assert RunModel.objects.get(pk=run.run_id).name == "Sync data"


def test_it_finds_the_project_id_by_itself(runs, project):
    assert runs.create_task_run(target="task:sync-data").run.owner.id == str(project.id)
    assert runs.get_project().slug == "acme"


def test_it_reports_a_duplicate_only_for_the_callers_own_key(runs):
    first = runs.create_task_run(target="task:sync-data", public_id="nightly-2024-05-01")
    again = runs.create_task_run(target="task:sync-data", public_id="nightly-2024-05-01")
    assert again.duplicate is True
    assert again.run.run_id == first.run.run_id
    assert RunModel.objects.count() == 1


def test_it_gets_a_run_and_reads_its_events(runs):
    run_id = runs.create_task_run(target="task:sync-data", input={"limit": 2}).run.run_id
    run = runs.get(run_id)
    assert run.run_id == run_id and run.input == {"limit": 2, "only_active": True}
    page = runs.events(run_id)
    assert [e.event_type for e in page.data] == ["run.created"]
    assert isinstance(page.data[0], Event) and isinstance(page.data[0].event_id, int)
    assert page.page_info.next is None
    assert runs.events(run_id, after_event_id=page.data[0].event_id).data == []


def test_iter_events_follows_every_page(runs, project):
    run_id = runs.create_task_run(target="task:sync-data").run.run_id
    RunEvent.objects.bulk_create(
        [RunEvent(run_id=run_id, event_type="log", payload={"line": f"l{i}"}) for i in range(6)]
    )
    events = list(runs.iter_events(run_id, limit=2))
    assert [e.event_type for e in events] == ["run.created"] + ["log"] * 6
    assert [e.payload["line"] for e in events[1:]] == [f"l{i}" for i in range(6)]
    ids = [e.event_id for e in events]
    assert ids == sorted(set(ids))


def test_it_cancels_a_run(runs):
    run_id = runs.create_task_run(target="task:sync-data").run.run_id
    result = runs.cancel(run_id)
    assert result.cancelled is True and result.run.status == "cancelled"
    again = runs.cancel(run_id)
    assert again.cancelled is False


def test_it_lists_runs_and_follows_pages(runs):
    created = [runs.create_task_run(target="task:sync-data").run.run_id for _ in range(5)]
    page = runs.list(limit=2)
    assert len(page) == 2 and page.page_info.next
    assert [r.run_id for r in runs.iter_runs(limit=2)] == list(reversed(created))
    runs.cancel(created[0])
    assert [r.run_id for r in runs.list(status="cancelled").data] == [created[0]]


def test_it_reruns_a_run(runs):
    first = runs.create_task_run(target="task:sync-data", input={"limit": 1}).run
    second = runs.rerun(first.run_id).run
    assert second.run_id != first.run_id and second.input == first.input


def test_it_lists_and_shows_tasks(runs):
    assert "sync-data" in {t.id for t in runs.tasks()}
    assert runs.task("sync-data").schedulable is True


def test_wait_polls_until_the_run_finishes(live_server, secret):
    polls = []

    def finish_on_second_poll(seconds):
        polls.append(seconds)
        if len(polls) == 2:
            RunModel.objects.filter(status="pending").update(
                status="completed", output={"synced": 3}
            )

    with RunsClient(
        f"{live_server.url}/api", secret, "acme", sleep=finish_on_second_poll
    ) as client:
        run_id = client.create_task_run(target="task:sync-data").run.run_id
        run = client.wait(run_id, timeout=60, poll_interval=0.01)
    assert run.status == "completed" and run.output == {"synced": 3}
    assert len(polls) == 2


def test_wait_gives_up_after_the_timeout(runs):
    run_id = runs.create_task_run(target="task:sync-data").run.run_id
    with pytest.raises(RunsWaitTimeout) as caught:
        runs.wait(run_id, timeout=0)
    assert caught.value.run.status == "pending"
    assert isinstance(caught.value, TimeoutError)


def test_errors_are_typed_with_status_code_and_message(
    runs, live_server, read_only_secret, outsider_secret
):
    api_url = f"{live_server.url}/api"
    with pytest.raises(RunsError) as missing:
        runs.get(f"run_{'0' * 32}")
    assert (missing.value.status, missing.value.code) == (404, "not_found")

    with pytest.raises(RunsError) as invalid:
        runs.create_task_run(target="task:sync-data", input={"limit": 0})
    assert (invalid.value.status, invalid.value.code) == (422, "invalid_input")
    assert invalid.value.detail[0]["field"] == "request.input.limit"
    assert "limit" in invalid.value.message

    with pytest.raises(RunsError) as unknown:
        runs.create_task_run(target="task:nope")
    assert unknown.value.code == "target_not_found"

    with pytest.raises(RunsError) as workflow:
        runs.create_workflow_run(workflow_id="no-such-workflow")
    assert (workflow.value.status, workflow.value.code) == (422, "target_not_found")

    with (
        pytest.raises(RunsError) as forbidden,
        RunsClient(api_url, read_only_secret, "acme") as reader,
    ):
        reader.create_task_run(target="task:sync-data")
    assert forbidden.value.status == 403

    with (
        pytest.raises(RunsError) as unauthorized,
        RunsClient(api_url, "stu_wrongwrongwrong", "acme") as bad,
    ):
        bad.get_project()
    assert (unauthorized.value.status, unauthorized.value.code) == (401, "unauthorized")

    with (
        pytest.raises(RunsError) as outsider,
        RunsClient(api_url, outsider_secret, "acme") as other,
    ):
        other.list()
    assert outsider.value.status == 404
    assert RunModel.objects.count() == 0


def test_it_takes_its_defaults_from_the_environment(monkeypatch, live_server, secret, project):
    monkeypatch.setenv("STUDIO_API_URL", f"{live_server.url}/api/")
    monkeypatch.setenv("STUDIO_API_TOKEN", secret)
    monkeypatch.setenv("STUDIO_PROJECT", str(project.id))
    with RunsClient() as client:
        assert client.get_project().slug == "acme"


def test_it_needs_a_token(monkeypatch):
    monkeypatch.delenv("STUDIO_API_TOKEN", raising=False)
    with pytest.raises(ValueError, match="STUDIO_API_TOKEN"):
        RunsClient(api_url="http://127.0.0.1:9/api")


def test_it_imports_without_django_settings():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = "import sys, runs.client; assert not [m for m in sys.modules if m.startswith('django')]"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env, timeout=60)
