"""The Django admin as an operator uses it: finding runs, bounded events, tokens, run actions."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils import timezone

from runs.models import ApiToken, Run, RunEvent, RunStatus
from tests.foundation.helpers import SHIPPED_TASKS

pytestmark = pytest.mark.django_db

RUNS = reverse("admin:runs_run_changelist")
TOKENS = reverse("admin:runs_apitoken_changelist")


@pytest.fixture(autouse=True)
def shipped_tasks(settings):
    settings.STUDIO_TASKS_DIR = SHIPPED_TASKS


@pytest.fixture
def enqueued(monkeypatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr("runs.lifecycle.enqueue", lambda run_id, **kw: calls.append(run_id))
    return calls


def listed_runs(response) -> set[str]:
    assert response.status_code == 200
    return set(re.findall(r"run_[0-9a-f]{32}", response.content.decode()))


def make_run(project, **fields) -> Run:
    fields.setdefault("target", "task:sync-data")
    return Run.objects.create(project=project, **fields)


def test_runs_can_be_filtered_by_project(admin_client, project, other_project):
    mine = make_run(project)
    make_run(other_project)

    response = admin_client.get(RUNS, {"project__id__exact": str(project.pk)})

    assert listed_runs(response) == {mine.id}


@pytest.mark.parametrize(
    "param, value, field",
    [
        ("status__exact", "failed", {"status": RunStatus.FAILED}),
        ("kind__exact", "workflow", {"kind": Run.Kind.WORKFLOW}),
        ("trigger_kind__exact", "schedule", {"trigger_kind": Run.Trigger.SCHEDULE}),
    ],
)
def test_runs_can_be_filtered_by_status_kind_and_trigger(
    admin_client, project, param, value, field
):
    wanted = make_run(project, **field)
    make_run(project)

    response = admin_client.get(RUNS, {param: value})

    assert listed_runs(response) == {wanted.id}


def filter_link(response, title: str) -> str:
    """The href of the sidebar filter choice an operator would click."""
    match = re.search(
        rf'<a href="(\?[^"]*)"[^>]*>{re.escape(title)}</a>', response.content.decode()
    )
    assert match, f"no filter link {title!r}"
    return RUNS + html.unescape(match.group(1))


def test_runs_can_be_filtered_by_date(admin_client, project):
    old = make_run(project, created_at=timezone.now() - timedelta(days=400))
    recent = make_run(project)

    past_week = admin_client.get(filter_link(admin_client.get(RUNS), "Past 7 days"))
    by_year = admin_client.get(RUNS, {"created_at__year": old.created_at.year})

    assert listed_runs(past_week) == {recent.id}
    assert listed_runs(by_year) == {old.id}


def test_runs_can_be_found_by_id_target_and_name(admin_client, project):
    nightly = make_run(project, target="task:reports-weekly", name="Nightly revenue")
    other = make_run(project, target="task:sync-data", name="Sync")

    assert listed_runs(admin_client.get(RUNS, {"q": nightly.id})) == {nightly.id}
    assert listed_runs(admin_client.get(RUNS, {"q": "reports-weekly"})) == {nightly.id}
    assert listed_runs(admin_client.get(RUNS, {"q": "revenue"})) == {nightly.id}
    assert listed_runs(admin_client.get(RUNS, {"q": other.id})) == {other.id}


def test_a_run_page_shows_at_most_200_events_and_links_to_all(admin_client, project):
    run = make_run(project)
    RunEvent.objects.bulk_create(
        RunEvent(run=run, event_type="log", payload={"line": f"line {i}"}) for i in range(500)
    )
    event_ids = list(run.events.values_list("id", flat=True))

    # quote(): the admin escapes with "_", so an unquoted "run_23..." would name another object
    response = admin_client.get(reverse("admin:runs_run_change", args=[quote(run.pk)]))

    assert response.status_code == 200
    page = response.content.decode()
    shown = re.findall(r"<tr><td>(\d+)</td><td>log</td>", page)
    assert [int(i) for i in shown] == event_ids[-200:]
    link = re.search(r'<a href="([^"]+)">All events of this run</a>', page).group(1)
    all_events = admin_client.get(link.replace("&amp;", "&"))
    assert all_events.status_code == 200
    assert all_events.context["cl"].result_count == 500


def test_adding_a_token_shows_the_secret_once_and_stores_only_its_hash(admin_client, project):
    response = admin_client.post(
        reverse("admin:runs_apitoken_add"),
        {"project": str(project.pk), "name": "deploy bot", "scope": "read"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    secrets = set(re.findall(r"stu_[A-Za-z0-9_-]{20,}", html))
    assert len(secrets) == 1
    assert "Token “deploy bot” created" in html
    secret = secrets.pop()
    # Shown in this response only: never cached, never carried by a cookie or the session.
    assert "no-store" in response["Cache-Control"]
    assert not [c for c in response.cookies.values() if secret in c.value]
    assert secret not in str(dict(admin_client.session))
    token = ApiToken.objects.get()
    assert (token.name, token.project, token.scope) == ("deploy bot", project, "read")
    assert ApiToken.objects.authenticate(secret) == token
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert not [name for name, value in row.items() if secret in str(value)]
    assert secret not in admin_client.get(TOKENS).content.decode()
    change_page = admin_client.get(reverse("admin:runs_apitoken_change", args=[token.pk]))
    assert secret not in change_page.content.decode()


def test_the_revoke_action_revokes_the_selected_tokens(admin_client, project):
    revoked, secret = ApiToken.issue(project, "leaked")
    kept, kept_secret = ApiToken.issue(project, "kept")

    response = admin_client.post(
        TOKENS, {"action": "revoke_tokens", "_selected_action": [revoked.pk]}, follow=True
    )

    assert "Revoked 1 token(s)." in [str(m) for m in response.context["messages"]]
    assert ApiToken.objects.authenticate(secret) is None
    assert ApiToken.objects.authenticate(kept_secret) == kept


def test_the_cancel_action_cancels_through_the_service(admin_client, project, enqueued):
    pending = make_run(project, status=RunStatus.PENDING)
    running = make_run(project, status=RunStatus.RUNNING)
    finished = make_run(project, status=RunStatus.COMPLETED)

    response = admin_client.post(
        RUNS,
        {"action": "cancel_runs", "_selected_action": [pending.pk, running.pk, finished.pk]},
        follow=True,
    )

    assert "Cancellation requested for 2 run(s)." in [str(m) for m in response.context["messages"]]
    pending.refresh_from_db()
    running.refresh_from_db()
    finished.refresh_from_db()
    assert pending.status == RunStatus.CANCELLED
    assert pending.events.filter(event_type="run.cancelled").exists()
    assert (running.status, running.cancelling) == (RunStatus.RUNNING, True)
    assert (finished.status, finished.cancel_requested_at) == (RunStatus.COMPLETED, None)


def test_the_rerun_action_starts_a_new_run_through_the_service(
    admin_client, project, enqueued, django_capture_on_commit_callbacks
):
    original = make_run(
        project,
        status=RunStatus.COMPLETED,
        input={"limit": 1, "only_active": False},
        config={"batchSize": 5},
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            RUNS, {"action": "rerun_runs", "_selected_action": [original.pk]}, follow=True
        )

    assert "Started 1 new run(s)." in [str(m) for m in response.context["messages"]]
    new = Run.objects.exclude(pk=original.pk).get()
    assert (new.target, new.input, new.config) == (original.target, original.input, original.config)
    assert new.status == RunStatus.PENDING
    assert new.metadata == {"rerun_of": original.pk}
    assert new.created_by == "admin"
    assert list(new.events.values_list("event_type", flat=True)) == ["run.created"]
    assert enqueued == [new.pk]


def test_the_rerun_action_reports_a_run_whose_task_is_gone(admin_client, project, enqueued):
    gone = make_run(project, target="task:deleted-task", status=RunStatus.FAILED)

    response = admin_client.post(
        RUNS, {"action": "rerun_runs", "_selected_action": [gone.pk]}, follow=True
    )

    shown = [str(m) for m in response.context["messages"]]
    assert any(m.startswith(f"{gone.pk}: no task with id 'deleted-task'") for m in shown)
    assert "Started 0 new run(s)." in shown
    assert Run.objects.count() == 1
    assert enqueued == []


def test_runs_cannot_be_added_by_hand(admin_client):
    assert admin_client.get(reverse("admin:runs_run_add")).status_code == 403
