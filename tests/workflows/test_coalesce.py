"""Map items coalesce their advance messages: one queued per workflow run at a time, and the
message clears its marker before it advances, so an item ending later sends the next."""

from __future__ import annotations

import time

import pytest
from huey.contrib.djhuey import HUEY

from runs.orchestration import queue
from runs.orchestration.queue import advance_workflow, enqueue_advance

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run_id():
    rid = f"run_coalesce{time.time_ns()}"  # no such run: advancing it does nothing
    yield rid
    HUEY.storage.delete_data(queue._marker(rid))


def queued_for(run_id: str) -> int:
    return sum(
        1
        for message in HUEY.pending()
        if message.name.endswith("advance_workflow") and message.args == (run_id,)
    )


def test_items_ending_while_an_advance_is_queued_send_nothing_more(run_id):
    for _ in range(3):
        enqueue_advance(run_id, coalesce=True)
    assert queued_for(run_id) == 1


def test_an_item_ending_after_the_advance_started_sends_the_next(run_id):
    enqueue_advance(run_id, coalesce=True)
    advance_workflow.call_local(run_id)  # the queued message runs: marker cleared first
    enqueue_advance(run_id, coalesce=True)
    assert queued_for(run_id) == 2


def test_a_stale_marker_does_not_silence_the_run(run_id):
    stale = repr(time.time() - queue.MARKER_STALE_SECONDS - 1).encode()
    HUEY.storage.put_data(queue._marker(run_id), stale)  # its message was lost
    enqueue_advance(run_id, coalesce=True)
    assert queued_for(run_id) == 1


def test_other_advances_are_never_coalesced(run_id):
    enqueue_advance(run_id, coalesce=True)
    enqueue_advance(run_id)  # a timer, a decision, a signal, a cancel
    assert queued_for(run_id) == 2
