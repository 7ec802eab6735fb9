"""lifecycle.create_many: many runs stored as create() stores one, in a few statements."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from runs import lifecycle, service
from runs.models import Run, RunStatus
from tests.workers import TEST_TASKS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def test_tasks(settings):
    settings.STUDIO_TASKS_DIR = TEST_TASKS


@pytest.fixture
def enqueued(monkeypatch):
    calls: list[tuple[str, str | None]] = []
    monkeypatch.setattr(
        "runs.lifecycle.enqueue", lambda run_id, **kw: calls.append((run_id, kw.get("task_id")))
    )
    return calls


def built(project, count: int, **kwargs) -> tuple[list[Run], list[str]]:
    pairs = [service.build_task_run(project, target="task:echo", **kwargs) for _ in range(count)]
    return [run for run, _ in pairs], [definition.id for _, definition in pairs]


def test_many_runs_are_stored_pending_with_their_event_and_enqueued_after_commit(
    project, enqueued, django_capture_on_commit_callbacks
):
    runs, task_ids = built(project, 30, input={"n": 1}, created_by="someone")
    with (
        django_capture_on_commit_callbacks() as callbacks,
        CaptureQueriesContext(connection) as queries,
    ):
        lifecycle.create_many(runs, task_ids=task_ids)
        assert enqueued == []  # not before commit
    # PostgreSQL: one statement writes both tables. SQLite: a savepoint, the INSERTs (runs in
    # batches of SQLite's parameter limit), release.
    if connection.vendor == "postgresql":
        assert len(queries) == 1
    else:
        assert len(queries) <= 6
    for callback in callbacks:
        callback()
    assert enqueued == [(run.pk, "echo") for run in runs]
    stored = Run.objects.filter(pk__in=[r.pk for r in runs])
    assert stored.count() == 30
    for run in stored:
        assert run.status == RunStatus.PENDING and run.input["n"] == 1
        events = list(run.events.values_list("event_type", "payload"))
        assert events == [
            (
                "run.created",
                {"target": "task:echo", "trigger_kind": "manual", "created_by": "someone"},
            )
        ]


def test_a_conflict_stores_none_of_the_runs(project, enqueued, django_capture_on_commit_callbacks):
    service.create_run(project, target="task:echo", public_id="taken")
    runs, task_ids = built(project, 2)
    clash, _ = service.build_task_run(project, target="task:echo", public_id="taken")
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(IntegrityError), transaction.atomic():
            lifecycle.create_many([*runs, clash], task_ids=[*task_ids, "echo"])
    assert not Run.objects.filter(pk__in=[r.pk for r in runs]).exists()
    assert enqueued == []


def test_a_batch_larger_than_one_statement_is_stored_whole_or_not_at_all(
    project, enqueued, django_capture_on_commit_callbacks
):
    """Past one statement's share of parameters (a 1,000-item map), the chunks commit together:
    a clash in the last chunk leaves none of the earlier chunks behind."""
    count = lifecycle._MANY_CHUNK + 20
    runs, task_ids = built(project, count)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.create_many(runs, task_ids=task_ids)
    assert Run.objects.filter(pk__in=[r.pk for r in runs]).count() == count
    assert len(enqueued) == count
    first = Run.objects.get(pk=runs[0].pk)
    last = Run.objects.get(pk=runs[-1].pk)
    assert [e.event_type for e in first.events.all()] == ["run.created"]
    assert [e.event_type for e in last.events.all()] == ["run.created"]

    service.create_run(project, target="task:echo", public_id="taken")
    enqueued.clear()
    runs, task_ids = built(project, count)
    clash, _ = service.build_task_run(project, target="task:echo", public_id="taken")
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(IntegrityError):
            lifecycle.create_many([*runs, clash], task_ids=[*task_ids, "echo"])
    assert not Run.objects.filter(pk__in=[r.pk for r in runs]).exists()
    assert enqueued == []
