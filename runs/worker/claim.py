"""Executing one run attempt inside a Huey worker thread.

claim()      pending/waiting -> running with one conditional UPDATE ... RETURNING; losing the
             race means doing nothing
Supervisor   (runs/supervisor.py) has the fork server start the child, streams its output into
             events, watches cancel, timeout and shutdown, and finishes the run
hand_back()  running -> pending when a worker shuts down before the run ends

Also here: the worker's drain state, its fork server, and the retry backoff.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..definitions import TaskDefinition, discover
from ..models import Run, RunEvent, RunStatus
from ..process.forkserver import ForkServer

log = logging.getLogger(__name__)

_drain = threading.Event()
_drain_deadline = [float("inf")]
_PROCESS_TOKEN = uuid.uuid4().hex[:6]  # tells apart workers whose host and pid coincide


def begin_drain(grace_seconds: float) -> None:
    """Stop claiming runs; runs still going after `grace_seconds` are handed back to the queue."""
    _drain_deadline[0] = min(_drain_deadline[0], time.monotonic() + grace_seconds)
    _drain.set()


def draining() -> bool:
    return _drain.is_set()


def drain_deadline() -> float:
    return _drain_deadline[0]


_fork_server: ForkServer | None = None
_fork_server_lock = threading.Lock()


def fork_server() -> ForkServer:
    """This process's zygote for the configured tasks directory (started on first use)."""
    global _fork_server
    with _fork_server_lock:
        tasks_dir = Path(settings.STUDIO_TASKS_DIR)
        if _fork_server is None or _fork_server.tasks_dir != tasks_dir:
            if _fork_server is not None:
                _fork_server.stop()
            from ..sandboxing import policy

            _fork_server = ForkServer(tasks_dir, policy())
        return _fork_server


def worker_name() -> str:
    return (
        f"{socket.gethostname()}:{os.getpid()}.{_PROCESS_TOKEN}:{threading.current_thread().name}"
    )


def execute(run_id: str, task_id: str | None = None) -> None:
    """Entry point of the Huey task: run one attempt of `run_id` if it is ours to run."""
    try:
        claimed = claim(run_id, task_id)
        if claimed is not None:
            from .supervisor import Supervisor

            Supervisor(*claimed).run()
    finally:
        close_old_connections()


# --- claiming ---------------------------------------------------------------------------------


def claim(run_id: str, task_id: str | None = None) -> tuple[Run, TaskDefinition, bool] | None:
    """Take `run_id` for this worker: (run, definition, first_start), or None if not ours."""
    if _drain.is_set():
        # A shutting-down worker can still pull a message (a thread blocked in BRPOP when the
        # drain began): pass it on to the queue rather than swallow it.
        from ..service import enqueue

        enqueue(run_id, task_id=task_id)
        return None
    if task_id is None:  # messages from the sweeper and hand-backs carry only the run id
        target = Run.objects.filter(pk=run_id).values_list("target", flat=True).first()
        if target is None or not target.startswith("task:"):
            return None
        task_id = target.removeprefix("task:")
    definition = discover().get(task_id)
    if definition is None:
        run = Run.objects.filter(
            pk=run_id, status__in=[RunStatus.PENDING, RunStatus.WAITING]
        ).first()
        if run is not None:
            _fail_unstarted(
                run, f"task {task_id!r} no longer exists in the tasks directory", "target_not_found"
            )
        return None
    now = timezone.now()
    if definition.concurrency_limit:
        run = _claim_within_limit(run_id, definition, now)
    else:
        run = _claim_returning(run_id, now)
    if run is None:
        return None  # finished, cancelled, claimed by another worker, or not due yet
    return run, definition, run.attempt == 1 and run.started_at == now


_CLAIM_SQL = None


def _claim_returning(run_id: str, now, *, status: str | None = None) -> Run | None:
    """pending (or due waiting) -> running in one round trip: a conditional UPDATE ... RETURNING.

    The row count is the arbiter: two workers, a cancel and the sweeper may race for the same
    run, and exactly one UPDATE matches. The ORM has no UPDATE ... RETURNING, hence raw SQL
    (PostgreSQL and SQLite >= 3.35 both speak it).
    """
    global _CLAIM_SQL
    if _CLAIM_SQL is None:
        table = connection.ops.quote_name(Run._meta.db_table)
        _CLAIM_SQL = (
            f"UPDATE {table} SET status = %s, attempt = attempt + 1, started_at = COALESCE(started_at, %s), "
            "worker = %s, heartbeat_at = %s, waiting_reason = NULL, resume_at = NULL, updated_at = %s "
            "WHERE id = %s AND cancel_requested_at IS NULL "
            "AND (status = %s OR (status = %s AND (resume_at IS NULL OR resume_at <= %s))) "
            "RETURNING *"
        )
    ts = connection.ops.adapt_datetimefield_value(now)
    due = connection.ops.adapt_datetimefield_value(now + timedelta(seconds=1))
    pending = status or RunStatus.PENDING
    waiting = status or RunStatus.WAITING
    params = [RunStatus.RUNNING, ts, worker_name(), ts, ts, run_id, pending, waiting, due]
    rows = list(Run.objects.raw(_CLAIM_SQL, params))
    return rows[0] if rows else None


def _claim_within_limit(run_id: str, definition: TaskDefinition, now) -> Run | None:
    with transaction.atomic():
        run = Run.objects.filter(pk=run_id).only("status").first()
        if run is None or run.status not in (RunStatus.PENDING, RunStatus.WAITING):
            return None
        pick = _pick_within_limit(run, definition)
        if pick is None:
            return None  # stays pending; a finishing run of this task enqueues the next one
        return _claim_returning(
            pick, now, status=RunStatus.PENDING if pick != run.pk else run.status
        )


def _pick_within_limit(run: Run, definition: TaskDefinition) -> str | None:
    """Under the task's lock: the run to start now (the oldest pending one), or None if full."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [definition.target])
    # (SQLite: the IMMEDIATE transaction already holds the database's write lock.)
    running = Run.objects.filter(target=definition.target, status=RunStatus.RUNNING).count()
    if running >= definition.concurrency_limit:
        return None
    if run.status == RunStatus.WAITING:
        return run.pk
    oldest = (
        Run.objects.filter(target=definition.target, status=RunStatus.PENDING)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)
        .first()
    )
    return oldest


def _fail_unstarted(run: Run, message: str, code: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        if Run.objects.filter(pk=run.pk, status=run.status).update(
            status=RunStatus.FAILED,
            completed_at=now,
            updated_at=now,
            error={"message": message, "code": code, "detail": None},
        ):
            RunEvent.objects.create(
                run_id=run.pk,
                event_type="run.failed",
                payload={"error": {"message": message, "code": code, "detail": None}},
            )


def enqueue_next_in_line(target: str, limit: int) -> None:
    """When a run of a concurrency-limited task frees its slot, start the oldest ones waiting
    for a slot: pending runs, and retries that are due."""
    from ..service import enqueue

    running = Run.objects.filter(target=target, status=RunStatus.RUNNING).count()
    free = max(0, limit - running)
    if not free:
        return
    due = Q(status=RunStatus.PENDING) | Q(status=RunStatus.WAITING, resume_at__lte=timezone.now())
    for run_id in (
        Run.objects.filter(due, target=target, cancel_requested_at__isnull=True)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:free]
    ):
        enqueue(run_id, task_id=target.removeprefix("task:"))


# --- supervising ------------------------------------------------------------------------------


def backoff_delay(failed_attempt: int) -> float:
    """Exponential backoff with equal jitter: half the step is fixed, half is random."""
    step = min(
        settings.STUDIO_RETRY_MAX_SECONDS,
        settings.STUDIO_RETRY_BASE_SECONDS * 2 ** (failed_attempt - 1),
    )
    return step / 2 + random.uniform(0, step / 2)


def hand_back(run: Run, worker: str, *, reason: str) -> bool:
    """Return a running run to the queue without spending an attempt (planned shutdown).
    A run whose cancel was requested meanwhile ends `cancelled` instead."""
    from ..service import enqueue

    now = timezone.now()
    owned = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, worker=worker)
    with transaction.atomic():
        if owned.filter(cancel_requested_at__isnull=True).update(
            status=RunStatus.PENDING,
            attempt=F("attempt") - 1,
            worker=None,
            heartbeat_at=None,
            enqueued_at=now,
            updated_at=now,
        ):
            RunEvent.objects.create(
                run_id=run.pk, event_type="run.requeued", payload={"reason": reason}
            )
            requeued = True
        else:
            cancelled = f"{run.cancel_reason or 'cancelled by request'} (its worker shut down)"
            if owned.update(
                status=RunStatus.CANCELLED,
                completed_at=now,
                heartbeat_at=None,
                updated_at=now,
                error={"message": cancelled, "code": "cancelled", "detail": None},
            ):
                RunEvent.objects.create(
                    run_id=run.pk, event_type="run.cancelled", payload={"reason": cancelled}
                )
            requeued = False
    if requeued:
        enqueue(run.pk)
    return requeued
