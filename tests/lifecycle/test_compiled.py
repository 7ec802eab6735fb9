"""runs.compiled: hot reads compiled once, and writes sent in one round trip, behave as the ORM's."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from runs import service
from runs.compiled import Compiled, pipelined, update_row
from runs.models import Run
from tests.workers import TEST_TASKS

pytestmark = pytest.mark.django_db

LOCKED = Compiled(
    lambda run_id: (
        Run.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(pk=run_id, kind=Run.Kind.TASK)
        .order_by()
    )
)
CHILDREN = Compiled(
    lambda parent_id, status: Run.objects.filter(parent_run_id=parent_id, status=status).order_by(
        "created_at"
    ),
    arity=2,
)


@pytest.fixture(autouse=True)
def test_tasks(settings):
    settings.STUDIO_TASKS_DIR = TEST_TASKS


def test_a_compiled_read_gives_the_instances_the_queryset_gives(project):
    made = service.create_run(project, target="task:echo", input={"n": 7}).run
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        (run,) = LOCKED.fetch(made.pk)
        assert run.project.slug == project.slug  # came with the row: no second query
    assert len(queries) == 1
    if connection.vendor == "postgresql":
        assert "FOR UPDATE" in queries[0]["sql"]
    expected = Run.objects.get(pk=made.pk)
    for field in Run._meta.concrete_fields:
        assert getattr(run, field.attname) == getattr(expected, field.attname), field.name
    assert run.input == {"n": 7} and not run._state.adding
    with transaction.atomic():
        assert LOCKED.fetch("run_missing") == []


def test_parameters_go_where_they_were_given_and_the_statement_is_reused(project):
    parent, other = (service.create_run(project, target="task:echo").run for _ in range(2))
    mine = [
        service.create_run(project, target="task:echo", parent_run=parent).run.pk for _ in range(3)
    ]
    service.create_run(project, target="task:echo", parent_run=other)
    assert [r.pk for r in CHILDREN.fetch(parent.pk, "pending")] == mine
    assert CHILDREN.fetch(parent.pk, "completed") == []
    assert len(CHILDREN.fetch(other.pk, "pending")) == 1
    with pytest.raises(TypeError):
        CHILDREN.fetch(parent.pk)


def test_pipelined_writes_land_and_a_failing_one_rolls_the_transaction_back(project):
    run = service.create_run(project, target="task:echo").run
    with transaction.atomic(), pipelined():
        update_row(Run, run.pk, {"name": "renamed", "metadata": {"a": [1]}})
        update_row(Run, run.pk, {"worker": "w-1"})
    run.refresh_from_db()
    assert (run.name, run.metadata, run.worker) == ("renamed", {"a": [1]}, "w-1")

    with pytest.raises(DatabaseError), transaction.atomic(), pipelined():
        update_row(Run, run.pk, {"name": "lost"})
        update_row(Run, run.pk, {"status": None})  # NOT NULL: refused by the database
    run.refresh_from_db()
    assert run.name == "renamed"
