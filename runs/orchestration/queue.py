"""The Huey message that advances a workflow run. Like every message it is only transport: the
database says what to do, so a duplicate or late message is harmless and a lost one is found by
the sweeper.

Coalescing (map items): a 200-item map's items end around the same time, and one advance per
item would read the map's children 200 times over. An item's end sends a message only if none is
queued for that workflow run yet: a marker in the queue's key-value store, set when a message is
sent and removed by the message as it starts, *before* the advance reads anything. So an item
that ended after the removal sends the next message, and one that ended before it is seen by the
advance that removed it. A marker older than MARKER_STALE_SECONDS is ignored (a lost message must
not silence a run until the sweeper comes)."""

from __future__ import annotations

import logging
import time

from django.db import close_old_connections, transaction
from huey.constants import EmptyData
from huey.contrib.djhuey import HUEY

log = logging.getLogger(__name__)

MARKER_STALE_SECONDS = 30.0


def _marker(run_id: str) -> str:
    return f"studio:advance-queued:{run_id}"


@HUEY.task(retries=0, context=False)
def advance_workflow(run_id: str) -> None:
    from .engine import advance

    try:
        HUEY.storage.delete_data(_marker(run_id))
    except Exception:
        log.exception("could not clear the queued-advance marker of %s", run_id)
    try:
        advance(run_id)
    finally:
        close_old_connections()


def _send(run_id: str, delay: float | None) -> None:
    try:
        if delay and delay > 0:
            advance_workflow.schedule((run_id,), delay=delay)
        else:
            advance_workflow(run_id)
    except Exception:
        log.exception("could not enqueue advance of %s; the sweeper will pick it up", run_id)


def _send_once(run_id: str) -> None:
    """Send unless a message for `run_id` is queued and not started (see the module's doc)."""
    storage = HUEY.storage
    key = _marker(run_id)
    now = time.time()
    stamp = repr(now).encode()
    try:
        if not storage.put_if_empty(key, stamp):
            queued = storage.peek_data(key)
            if queued is not EmptyData:
                try:
                    if now - float(bytes(queued)) < MARKER_STALE_SECONDS:
                        return
                except ValueError:
                    pass
            storage.put_data(key, stamp)
    except Exception:
        log.exception("queued-advance marker of %s unavailable; sending anyway", run_id)
    _send(run_id, None)


def enqueue_advance(run_id: str, *, delay: float | None = None, coalesce: bool = False) -> None:
    """Advance `run_id` once the current transaction commits (at once outside one).

    `coalesce`: not if an advance of it is already queued and has not started (map items)."""
    if coalesce and not delay:
        transaction.on_commit(lambda: _send_once(run_id))
    else:
        transaction.on_commit(lambda: _send(run_id, delay))
