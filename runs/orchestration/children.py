"""Storing the child runs one advance starts, together.

`create_many` has the signature of the bulk `lifecycle.create_many(runs, *, task_ids)` another
branch adds, and uses it once it exists; until then it is lifecycle.create per run, in the
caller's transaction (the advance's), so that the advance's other writes and its children commit
together or not at all."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from .. import lifecycle
from ..models import Run


def create_many(runs: Sequence[Run], *, task_ids: Sequence[str | None]) -> None:
    """Insert pending runs with their `run.created` events; each is enqueued with its task id
    once the transaction commits (so a worker claims it without reading it first)."""
    if len(runs) != len(task_ids):
        raise ValueError("one task id per run")
    bulk = getattr(lifecycle, "create_many", None)
    if bulk is not None:  # the lifecycle's own, once merged: the same contract, in bulk
        bulk(runs, task_ids=task_ids)
        return
    with transaction.atomic(savepoint=False):
        for run, task_id in zip(runs, task_ids, strict=True):
            lifecycle.create(run, task_id=task_id)
