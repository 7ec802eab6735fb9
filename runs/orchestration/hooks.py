"""What the run lifecycle tells workflows: a child ended (or went to wait for a retry), so its
workflow run may move on. Registered from RunsConfig.ready()."""

from __future__ import annotations

import logging

from .. import lifecycle
from ..models import Run, RunStatus
from .engine import advance
from .queue import enqueue_advance

log = logging.getLogger(__name__)


def advance_parent(run: Run) -> None:
    """After a run ends: advance the workflow it is a step of; and a cancelled workflow run
    itself, whose steps and children still need stopping."""
    if run.parent_run_id:
        if (run.metadata or {}).get("item_index") is not None:
            # A map item: its siblings end around the same time, and threads advancing one
            # workflow run would only queue on its lock. A message, unless one is queued and
            # not started yet: that advance will see this item too (runs.orchestration.queue).
            enqueue_advance(run.parent_run_id, coalesce=True)
        else:
            _advance_now(run.parent_run_id, run)
    if run.kind == Run.Kind.WORKFLOW:
        if run.status == RunStatus.CANCELLED:
            enqueue_advance(run.pk)
        # Its slot is free: the oldest pending run of the same workflow may start (cheap when
        # there is none; only limited workflows keep runs pending).
        waiting = (
            Run.objects.filter(kind=Run.Kind.WORKFLOW, target=run.target, status=RunStatus.PENDING)
            .order_by("created_at", "id")
            .values_list("pk", flat=True)
            .first()
        )
        if waiting:
            enqueue_advance(waiting)


def _advance_now(run_id: str, child: Run) -> None:
    """Advance right here, in the thread that ended the child, so the next step's child is
    created without a queue hop in between (the step hand-off latency). If that fails, a queued
    message tries again, and the sweeper after that."""
    try:
        advance(run_id, ended_child=child)
    except Exception:
        log.exception("advancing %s after its child ended failed; queueing it", run_id)
        enqueue_advance(run_id)


def mirror_retry(run: Run) -> None:
    """A child waiting for its retry: its step shows `retrying`."""
    if run.parent_run_id and run.status == RunStatus.WAITING:
        enqueue_advance(run.parent_run_id)


def register() -> None:
    lifecycle.on_terminal(advance_parent, phase="after_commit")
    lifecycle.on_release(mirror_retry)
