"""The sweeper's part for workflows: workflow runs that should have advanced but did not (the
message was lost, or the worker died mid-advance and its transaction rolled back)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from ..models import ACTIVE_STATUSES, Run, RunStatus
from .queue import enqueue_advance

log = logging.getLogger(__name__)

BATCH = 500


def sweep_workflows() -> int:
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.STUDIO_REQUEUE_AFTER_SECONDS)
    workflows = Run.objects.filter(kind=Run.Kind.WORKFLOW)
    due: set[str] = set()
    # Never advanced at all.
    due.update(
        workflows.filter(status=RunStatus.PENDING, enqueued_at__lt=cutoff).values_list(
            "pk", flat=True
        )[:BATCH]
    )
    # A timer (sleep, approval expiry, event timeout, the workflow's deadline) is due.
    due.update(
        workflows.filter(status=RunStatus.WAITING, resume_at__lte=now).values_list("pk", flat=True)[
            :BATCH
        ]
    )
    # Running, yet nothing it started is still active: a child's hook or an advance was lost.
    due.update(
        workflows.filter(status=RunStatus.RUNNING, updated_at__lt=cutoff)
        .exclude(child_runs__status__in=ACTIVE_STATUSES)
        .values_list("pk", flat=True)[:BATCH]
    )
    # Past the workflow's own deadline while children still run.
    for pk, started_at, timeout in workflows.filter(
        status__in=[RunStatus.RUNNING, RunStatus.WAITING], started_at__isnull=False
    ).values_list("pk", "started_at", "timeout_seconds")[: BATCH * 4]:
        if timeout and started_at + timedelta(seconds=timeout) <= now:
            due.add(pk)
    for pk in due:
        enqueue_advance(pk)
    if due:
        log.info("advancing %d workflow run(s) that did not move on by themselves", len(due))
    return len(due)
