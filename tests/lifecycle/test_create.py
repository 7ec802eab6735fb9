"""lifecycle.create: a run and its `run.created` event stored as the ORM would store them; on
PostgreSQL in one statement, on the cursor the thread keeps (runs.compiled.execute_kept)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs import lifecycle, service
from runs.models import Run, RunEvent, RunStatus
from tests.workers import TEST_TASKS

# Outside a transaction, as a request creates a run (one test opens its own).
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def test_tasks(settings):
    settings.STUDIO_TASKS_DIR = TEST_TASKS


def build(project, **kwargs) -> Run:
    run, _ = service.build_task_run(project, target="task:echo", **kwargs)
    return run


def test_every_column_is_stored_as_given(project):
    parent = service.create_run(project, target="task:echo").run
    run = build(
        project,
        input={"lines": ["héllo ✓", 'it\'s "quoted" \\ and 100%', "%s $1 %(x)s ?"]},
        config={"nested": {"list": [1, 2.5, None, True]}, "empty": {}},
        name="A name with 'quotes'",
        public_id="pub-1",
        parent_run=parent,
        batch_id="batch-1",
        timeout_seconds=2_147_483_647,
        backoff_limit=100,
        trigger_kind=Run.Trigger.API,
        trigger_id="trigger-1",
        created_by="token:ci",
        metadata={"rerun_of": parent.pk},
        start_mode="immediate",
        runtime_target_kind="main_branch",
    )
    run.created_at = run.enqueued_at = timezone.now() - timedelta(days=400, microseconds=7)
    lifecycle.create(run, task_id="echo", enqueue_run=False)

    stored = Run.objects.get(pk=run.pk)
    for field in Run._meta.concrete_fields:
        assert getattr(stored, field.attname) == getattr(run, field.attname), field.name
    assert stored.status == RunStatus.PENDING and stored.root_run_id == parent.pk
    assert not run._state.adding and run._state.db == "default"
    event = RunEvent.objects.get(run=run)
    assert (event.event_type, event.created_at) == ("run.created", run.created_at)
    assert event.payload == {"target": "task:echo", "trigger_kind": "api", "created_by": "token:ci"}


def test_every_field_sends_none_as_null():
    # The INSERT's values skip the field's conversion for a None (lifecycle._column_values):
    # that must be what the field itself would send.
    for field in Run._meta.concrete_fields:
        assert field.get_db_prep_save(None, connection) is None, field.name


def test_a_run_with_no_optional_value_set_stores_nulls(project):
    run = build(project)
    lifecycle.create(run, task_id="echo", enqueue_run=False)
    stored = Run.objects.get(pk=run.pk)
    nullable = [f for f in Run._meta.concrete_fields if f.null]
    assert [f.name for f in nullable if getattr(stored, f.attname) is not None] == [
        f.name for f in nullable if getattr(run, f.attname) is not None
    ]


def test_a_create_after_the_connection_was_replaced_is_stored(project):
    first = service.create_run(project, target="task:echo").run
    connection.close()  # CONN_MAX_AGE ran out, or a health check failed: a new connection next
    second = service.create_run(project, target="task:echo").run
    assert set(Run.objects.values_list("pk", flat=True)) == {first.pk, second.pk}
    assert RunEvent.objects.filter(run__in=[first, second], event_type="run.created").count() == 2


def test_query_tools_see_the_create(project):
    run = build(project)
    with CaptureQueriesContext(connection) as queries:
        lifecycle.create(run, task_id="echo", enqueue_run=False)
    statements = [query["sql"] for query in queries if run.pk in query["sql"]]
    # PostgreSQL: the run and its event in one statement; SQLite: one INSERT each.
    assert len(statements) == (1 if connection.vendor == "postgresql" else 2)
    assert Run.objects.filter(pk=run.pk).exists()


def test_a_taken_public_id_raises_djangos_integrity_error(project):
    service.create_run(project, target="task:echo", public_id="taken")
    with pytest.raises(IntegrityError):
        lifecycle.create(build(project, public_id="taken"), task_id="echo", enqueue_run=False)
    # Inside a transaction the loser's statement is rolled back alone: the caller carries on.
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            lifecycle.create(build(project, public_id="taken"), task_id="echo", enqueue_run=False)
        later = build(project)
        lifecycle.create(later, task_id="echo", enqueue_run=False)
    assert Run.objects.filter(public_id="taken").count() == 1
    assert Run.objects.filter(pk=later.pk).exists()


def test_the_run_is_enqueued_once_the_transaction_commits(project, monkeypatch):
    enqueued: list[tuple[str, str | None]] = []
    monkeypatch.setattr(
        "runs.lifecycle.enqueue", lambda run_id, **kw: enqueued.append((run_id, kw.get("task_id")))
    )
    run = build(project)
    with transaction.atomic():
        lifecycle.create(run, task_id="echo")
        assert enqueued == []
    assert enqueued == [(run.pk, "echo")]
    rolled_back = build(project)
    with pytest.raises(RuntimeError), transaction.atomic():
        lifecycle.create(rolled_back, task_id="echo")
        raise RuntimeError
    assert enqueued == [(run.pk, "echo")]
    assert not Run.objects.filter(pk=rolled_back.pk).exists()
