"""Executing one run attempt inside a Huey worker thread.

claim()      find the task, then lifecycle.claim (pending/waiting -> running); losing the race
             means doing nothing
Supervisor   (runs/supervisor.py) has the fork server start the child, streams its output into
             events, watches cancel, timeout and shutdown, and finishes the run
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
from pathlib import Path

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from .. import lifecycle, metrics
from ..db import fewer_health_checks
from ..definitions import TaskDefinition, discover
from ..logs import bind, log_context
from ..models import Run, RunStatus
from ..process.forkserver import ForkServer
from ..queue import enqueue

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


def process_name() -> str:
    """This worker process: the name it registers under, and the prefix of its run owners."""
    return f"{socket.gethostname()}:{os.getpid()}.{_PROCESS_TOKEN}"


def worker_name() -> str:
    return f"{process_name()}:{threading.current_thread().name}"


def execute(run_id: str, task_id: str | None = None) -> None:
    """Entry point of the Huey task: run one attempt of `run_id` if it is ours to run."""
    with log_context(run_id=run_id, worker=worker_name()):
        try:
            fewer_health_checks()
            try:
                claimed = claim(run_id, task_id)
            except (OperationalError, InterfaceError):
                # The connection may have died since it was last used (it is pinged at most
                # once a second): once more, on a new one. A claim that did commit before the
                # answer was lost finds the run taken and leaves it to the sweeper, as before.
                connection.close()
                claimed = claim(run_id, task_id)
            if claimed is not None:
                from .supervisor import Supervisor

                bind(project=metrics.project_slug(claimed[0].project_id))
                Supervisor(*claimed).run()
        finally:
            close_old_connections()


# --- claiming ---------------------------------------------------------------------------------


def claim(run_id: str, task_id: str | None = None) -> tuple[Run, TaskDefinition, bool] | None:
    """Take `run_id` for this worker: (run, definition, first_start), or None if not ours."""
    if _drain.is_set():
        # A shutting-down worker can still pull a message (a thread blocked in BRPOP when the
        # drain began): pass it on to the queue rather than swallow it.
        enqueue(run_id, task_id=task_id)
        return None
    if task_id is None:  # messages from the sweeper and hand-backs carry only the run id
        target = Run.objects.filter(pk=run_id).values_list("target", flat=True).first()
        if target is None or not target.startswith("task:"):
            return None
        task_id = target.removeprefix("task:")
    definition = discover().get(task_id)
    if definition is None:
        run = Run.objects.filter(pk=run_id, status__in=lifecycle.IDLE).first()
        if run is not None:
            lifecycle.fail(
                run,
                lifecycle.error(
                    f"task {task_id!r} no longer exists in the tasks directory", "target_not_found"
                ),
            )
        return None
    _limits[definition.target] = definition.concurrency_limit
    now = timezone.now()
    run = lifecycle.claim(
        run_id,
        worker=worker_name(),
        now=now,
        target=definition.target,
        concurrency_limit=definition.concurrency_limit,
    )
    if run is None:
        return None  # finished, cancelled, claimed by another worker, or not due yet
    return run, definition, run.attempt == 1 and run.started_at == now


# The concurrency limit of each target this process claimed, so that freeing a slot (on every
# run's end) needs no discovery scan.
_limits: dict[str, int | None] = {}


def free_slot(run: Run) -> None:
    """A run left `running`: if its task has a concurrency limit, start the next in line."""
    if run.target not in _limits:
        definition = discover().get(run.task_id) if run.task_id else None
        _limits[run.target] = definition.concurrency_limit if definition else None
    limit = _limits[run.target]
    if limit:
        enqueue_next_in_line(run.target, limit)


def enqueue_next_in_line(target: str, limit: int) -> None:
    """Start the oldest runs waiting for a slot of `target`: pending runs, and due retries."""
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
