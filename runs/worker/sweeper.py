"""Finds runs that transport or a worker lost, and puts them right. Runs in every consumer.

Every change is a lifecycle transition (a conditional UPDATE), so any number of sweepers (one per worker host) and live
workers can race without harm.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from .. import lifecycle, metrics
from ..models import Run, RunStatus
from ..queue import enqueue
from . import registry, reuse
from .claim import backoff_delay, process_name

log = logging.getLogger(__name__)


_extra_sweeps: dict[str, Callable[[], int]] = {}


def also_sweep(name: str, fn: Callable[[], int]) -> None:
    """Add a pass to every sweep (registered from AppConfig.ready(), e.g. workflows', which
    sit above the worker and so cannot be imported from here)."""
    _extra_sweeps[name] = fn


def sweep() -> dict[str, int]:
    """One pass: finish or retry runs of dead workers (at once when their death is certain),
    re-enqueue runs whose message was lost."""
    actions = {
        "worker_gone": registry.settle_dead_workers(me=process_name()),
        "lost": _reap_lost_runs(),
        "cancelled": _cancel_requested_idle_runs(),
        "requeued": _requeue_forgotten_runs(),
        **{name: fn() for name, fn in _extra_sweeps.items()},
    }
    metrics.sweeper_actions(actions)
    return actions


def _cancel_requested_idle_runs() -> int:
    """Pending or waiting runs with a cancel request (a cancel that raced a retry or a
    hand-back): workers no longer claim them, so end them here."""
    return sum(
        lifecycle.settle_cancel_request(run)
        for run in Run.objects.filter(
            status__in=lifecycle.IDLE, cancel_requested_at__isnull=False
        ).only("pk", "status", "cancel_reason", "target", "project_id", "parent_run_id")[:500]
    )


def _reap_lost_runs() -> int:
    stale = timezone.now() - timedelta(seconds=settings.STUDIO_WORKER_LOST_SECONDS)
    count = 0
    for run in Run.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale):
        status = lifecycle.settle_lost(run, retry_delay=backoff_delay(run.attempt))
        if status is not None:
            log.warning("%s: worker %s lost; run is now %s", run.pk, run.worker, status)
            count += 1
    return count


def _requeue_forgotten_runs() -> int:
    """Pending runs (and retries past due) that no queue message seems to stand for."""
    from huey.contrib.djhuey import HUEY

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
                reuse.retire_idle()  # warm processes idle for too long
            except Exception:
                log.exception("sweep failed; trying again in %ss", self.interval)
            finally:
                close_old_connections()
            if self.stop_event.wait(self.interval):
                return
