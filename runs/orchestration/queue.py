"""The Huey message that advances a workflow run. Like every message it is only transport: the
database says what to do, so a duplicate or late message is harmless and a lost one is found by
the sweeper."""

from __future__ import annotations

import logging

from django.db import close_old_connections, transaction
from huey.contrib.djhuey import HUEY

log = logging.getLogger(__name__)


@HUEY.task(retries=0, context=False)
def advance_workflow(run_id: str) -> None:
    from .engine import advance

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


def enqueue_advance(run_id: str, *, delay: float | None = None) -> None:
    """Advance `run_id` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send(run_id, delay))
