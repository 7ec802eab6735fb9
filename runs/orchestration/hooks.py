"""What the run lifecycle tells workflows: a child ended (or went to wait for a retry), so its
workflow run may move on. Registered from RunsConfig.ready()."""

from __future__ import annotations

from .. import lifecycle
from ..models import Run, RunStatus
from .queue import enqueue_advance


def advance_parent(run: Run) -> None:
    """After a run ends: advance the workflow it is a step of; and a cancelled workflow run
    itself, whose steps and children still need stopping."""
    if run.parent_run_id:
        enqueue_advance(run.parent_run_id)
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


def mirror_retry(run: Run) -> None:
    """A child waiting for its retry: its step shows `retrying`."""
    if run.parent_run_id and run.status == RunStatus.WAITING:
        enqueue_advance(run.parent_run_id)


def register() -> None:
    lifecycle.on_terminal(advance_parent, phase="after_commit")
    lifecycle.on_release(mirror_retry)
