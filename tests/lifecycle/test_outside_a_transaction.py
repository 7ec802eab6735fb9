"""Transitions made outside any transaction, as a worker makes them: on PostgreSQL a run's
ending is then one statement (runs/lifecycle.py, `_move_in_one_statement`), unless a hook may
have work, and it must say and store exactly what the transaction would."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs import lifecycle, service
from runs.models import NotificationOutbox, NotificationTarget, Run, RunStatus
from tests.workers import TEST_TASKS

pytestmark = pytest.mark.django_db(transaction=True)

W1, W2 = "host:1:t1", "host:2:t1"


@pytest.fixture(autouse=True)
def test_tasks(settings, monkeypatch):
    settings.STUDIO_TASKS_DIR = TEST_TASKS
    monkeypatch.setattr("runs.lifecycle.enqueue", lambda *args, **kwargs: None)


@pytest.fixture
def running(project):
    def make() -> Run:
        run = service.create_run(project, target="task:echo").run
        return lifecycle.claim(run.pk, worker=W1)

    return make


def _ending(run: Run):
    started = ("run.started", {"attempt": 1, "worker": W1}, timezone.now())
    return lifecycle.complete(
        run, {"ok": 1}, worker=W1, fields={"exit_code": 0, "logs": "hi\n"}, events=[started]
    )


def test_a_run_ends_with_its_events_in_order(running):
    run = running()
    assert not connection.in_atomic_block
    assert _ending(run) is True
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.output, stored.exit_code, stored.logs) == (
        RunStatus.COMPLETED,
        {"ok": 1},
        0,
        "hi\n",
    )
    assert list(stored.events.order_by("id").values_list("event_type", flat=True)) == [
        "run.created",
        "run.started",
        "run.completed",
    ]
    assert run.status == RunStatus.COMPLETED  # the caller's object carries the new values


@pytest.mark.skipif(connection.vendor != "postgresql", reason="one statement on PostgreSQL only")
def test_on_postgresql_a_run_ends_in_one_statement(running):
    run = running()
    with CaptureQueriesContext(connection) as queries:
        assert _ending(run) is True
    assert len(queries) == 1


def test_a_project_with_a_notification_target_still_gets_its_outbox_row(project, running):
    target = NotificationTarget(
        project=project, url="https://hooks.example.com/studio", outcomes=["completed"]
    )
    target.set_secret()
    target.save()
    run = running()
    assert _ending(run) is True
    assert Run.objects.get(pk=run.pk).status == RunStatus.COMPLETED
    assert NotificationOutbox.objects.filter(run_id=run.pk, target=target).count() == 1


def test_a_lost_race_writes_nothing(running):
    run = running()
    lost = lifecycle.complete(run, None, worker=W2)  # not W2's run
    assert lost is False
    stored = Run.objects.get(pk=run.pk)
    assert stored.status == RunStatus.RUNNING
    assert stored.events.count() == 1  # run.created only


def test_after_commit_hooks_still_run(running, monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(lifecycle, "_terminal_hooks", {"in_transaction": [], "after_commit": []})
    monkeypatch.setattr(lifecycle, "_release_hooks", [])
    lifecycle.on_terminal(lambda r: seen.append(f"terminal {r.status}"))
    lifecycle.on_release(lambda r: seen.append(f"released {r.status}"))
    assert _ending(running()) is True
    assert seen == ["terminal completed", "released completed"]
