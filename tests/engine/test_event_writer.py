"""The writer threads that store a chatty run's event batches while the supervisor reads on."""

from __future__ import annotations

import pytest
from django.db import DatabaseError
from django.utils import timezone

from runs import service
from runs.events import LogLines, RawJSON, insert_events
from runs.models import Project
from runs.worker import supervisor
from runs.worker.supervisor import EventWriter


def lines(*texts: str) -> list:
    now = timezone.now()
    return [("log", RawJSON(f'{{"stream": "stdout", "line": "{t}"}}'), now) for t in texts]


@pytest.fixture
def run(transactional_db):
    project = Project.objects.create(slug="acme", name="Acme")
    return service.create_run(project, target="task:echo").run


def stored(run) -> list[str]:
    return list(
        run.events.filter(event_type="log").order_by("id").values_list("payload__line", flat=True)
    )


def test_batches_are_stored_in_the_order_they_were_handed_over(run):
    writer = EventWriter(run.pk)
    for i in range(12):
        writer.put(lines(f"{i}a", f"{i}b"))
    writer.close()
    assert stored(run) == [f"{i}{part}" for i in range(12) for part in "ab"]


def test_nothing_after_a_failed_batch_is_stored_and_close_says_why(run, monkeypatch):
    store = supervisor.insert_events

    def failing_on_second_batch(run_id, rows):
        if rows[0][1] == RawJSON('{"stream": "stdout", "line": "second"}'):
            raise DatabaseError("the disk is full")
        store(run_id, rows)

    monkeypatch.setattr(supervisor, "insert_events", failing_on_second_batch)
    writer = EventWriter(run.pk)
    for text in ("first", "second", "third", "fourth"):
        writer.put(lines(text))
    with pytest.raises(DatabaseError, match="the disk is full"):
        writer.close()
    assert stored(run) == ["first"]
    assert not any(thread.is_alive() for thread in writer.threads)


def test_log_lines_survive_the_bulk_path_exactly(run):
    awkward = [
        "tab\there",
        "back\\slash and \\n not a newline",
        'quote " and } brace',
        "\x07bell and \x1b[31mcolour",
        "unicode: é ü 漢字 🚀",
        "",
        "\\",
        "trailing space ",
    ]
    many = awkward * 5  # more than a few rows: COPY on PostgreSQL
    insert_events(run.pk, [LogLines("stderr", many, timezone.now())])
    events = run.events.filter(event_type="log").order_by("id")
    assert [e.payload for e in events] == [{"stream": "stderr", "line": line} for line in many]
