"""Finds runs that transport or a worker lost, and puts them right. Runs in every consumer.

Every change is a conditional UPDATE, so any number of sweepers (one per worker host) and live
workers can race without harm.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from ..definitions import discover
from ..models import Run, RunEvent, RunStatus
from .claim import backoff_delay, enqueue_next_in_line

log = logging.getLogger(__name__)


def sweep() -> dict[str, int]:
    """One pass: finish or retry runs of dead workers, re-enqueue runs whose message was lost."""
    return {
        "lost": _reap_lost_runs(),
        "cancelled": _cancel_requested_idle_runs(),
        "requeued": _requeue_forgotten_runs(),
    }


def _cancel_requested_idle_runs() -> int:
    """Pending or waiting runs with a cancel request (a cancel that raced a retry or a
    hand-back): workers no longer claim them, so end them here."""
    count = 0
    for pk, status, reason in Run.objects.filter(
        status__in=[RunStatus.PENDING, RunStatus.WAITING], cancel_requested_at__isnull=False
    ).values_list("pk", "status", "cancel_reason")[:500]:
        now = timezone.now()
        reason = reason or "cancelled by request"
        with transaction.atomic():
            if Run.objects.filter(pk=pk, status=status).update(
                status=RunStatus.CANCELLED,
                completed_at=now,
                updated_at=now,
                waiting_reason=None,
                resume_at=None,
                error={"message": reason, "code": "cancelled", "detail": None},
            ):
                RunEvent.objects.create(
                    run_id=pk, event_type="run.cancelled", payload={"reason": reason}
                )
                count += 1
    return count


def _reap_lost_runs() -> int:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.STUDIO_WORKER_LOST_SECONDS)
    count = 0
    for run in Run.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale).only(
        "pk",
        "target",
        "worker",
        "attempt",
        "backoff_limit",
        "cancel_requested_at",
        "metadata",
        "heartbeat_at",
    ):
        count += _settle_lost(run, now)
    return count


def _settle_lost(run: Run, now) -> int:
    from ..service import enqueue

    guard = {
        "pk": run.pk,
        "status": RunStatus.RUNNING,
        "worker": run.worker,
        "heartbeat_at": run.heartbeat_at,
    }
    error = {
        "message": f"the worker running this run stopped responding ({run.worker})",
        "code": "worker_lost",
        "detail": f"no heartbeat since {run.heartbeat_at.isoformat()}",
    }
    if run.cancel_requested_at is not None:
        reason = f"{run.cancel_reason or 'cancelled by request'} (its worker was lost)"
        fields = {
            "status": RunStatus.CANCELLED,
            "completed_at": now,
            "error": {"message": reason, "code": "cancelled", "detail": None},
        }
        event = ("run.cancelled", {"reason": reason})
        delay = None
    elif run.attempt <= run.backoff_limit:
        delay = backoff_delay(run.attempt)
        resume_at = now + timedelta(seconds=delay)
        fields = {
            "status": RunStatus.WAITING,
            "waiting_reason": "retry",
            "resume_at": resume_at,
            "error": error,
            "metadata": {
                **(run.metadata or {}),
                "retry": {
                    "failed_attempt": run.attempt,
                    "resume_at": resume_at.isoformat(),
                    "reason": error["message"],
                },
            },
        }
        event = (
            "run.retrying",
            {"attempt": run.attempt + 1, "delay_seconds": round(delay, 3), "error": error},
        )
    else:
        fields = {"status": RunStatus.FAILED, "completed_at": now, "error": error}
        event = ("run.failed", {"error": error})
        delay = None
    with transaction.atomic():
        if not Run.objects.filter(**guard).update(**fields, heartbeat_at=None, updated_at=now):
            return 0
        RunEvent.objects.create(run_id=run.pk, event_type=event[0], payload=event[1])
    log.warning("%s: worker %s lost; run is now %s", run.pk, run.worker, fields["status"])
    if delay is not None:
        enqueue(run.pk, delay=delay)
    definition = discover().get(run.target.removeprefix("task:"))
    if definition is not None and definition.concurrency_limit:
        enqueue_next_in_line(definition.target, definition.concurrency_limit)  # its slot is free
    return 1


def _requeue_forgotten_runs() -> int:
    """Pending runs (and retries past due) that no queue message seems to stand for."""
    from huey.contrib.djhuey import HUEY

    from ..service import enqueue

    now = timezone.now()
    after = timedelta(seconds=settings.STUDIO_REQUEUE_AFTER_SECONDS)
    try:
        queue_empty = HUEY.pending_count() == 0
    except Exception:  # the queue itself is down: nothing to re-enqueue into
        log.exception("cannot read the queue length")
        return 0
    # While the queue holds messages the workers are busy, and an old pending run is most likely
    # still in line; re-enqueue it only once the queue is empty, or when it is very old.
    cutoff = now - after if queue_empty else now - 10 * after
    candidates = list(
        Run.objects.filter(status=RunStatus.PENDING, enqueued_at__lt=cutoff).values_list(
            "pk", "enqueued_at"
        )[:500]
    ) + list(
        Run.objects.filter(
            status=RunStatus.WAITING, resume_at__lt=now - after, enqueued_at__lt=now - after
        ).values_list("pk", "enqueued_at")[:500]
    )
    count = 0
    for pk, enqueued_at in candidates:
        if Run.objects.filter(pk=pk, enqueued_at=enqueued_at).update(enqueued_at=now):
            enqueue(pk)
            count += 1
    if count:
        log.info("re-enqueued %d run(s) whose queue message was lost", count)
    return count


class SweeperThread(threading.Thread):
    def __init__(self, interval: float, stop: threading.Event):
        super().__init__(name="studio-sweeper", daemon=True)
        self.interval = interval
        self.stop_event = stop

    def run(self) -> None:
        while True:
            close_old_connections()
            try:
                sweep()
            except Exception:
                log.exception("sweep failed; trying again in %ss", self.interval)
            finally:
                close_old_connections()
            if self.stop_event.wait(self.interval):
                return
