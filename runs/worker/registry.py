"""The worker registry: a `Worker` row per `run_huey` process, and telling the dead from the slow.

A worker registers when it starts and heartbeats every STUDIO_HEARTBEAT_SECONDS from a thread of
its own, idle or not. Its death is *certain* (and its runs are settled at once, not after
STUDIO_WORKER_LOST_SECONDS) when:
- on PostgreSQL: the session-level advisory lock it holds for its lifetime is free, and its
  heartbeat is older than three intervals. A lock survives pid reuse in containers: it dies with
  the worker's database session, which dies with the process.
- on the same host (any database): its pid is gone, or belongs to a process started later.
Otherwise (a paused worker, another host on SQLite) it is lost only after the usual window.

The lock session can also drop while the worker lives (a dropped connection, a database
restart). A worker that could not confirm its lock for two intervals is *fenced*: its supervisors
stop their runs, so by the time anyone may call it dead, nothing of it runs any more.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from datetime import timedelta
from importlib import metadata

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, connections
from django.utils import timezone

from .. import lifecycle
from ..models import Run, RunStatus, Worker
from . import claim as engine

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x57D10  # first key of the two-key advisory locks: Studio's worker leases
FENCE_AFTER_BEATS = 2.0  # a worker stops its runs after this many intervals without its lease
CERTAIN_AFTER_BEATS = 3.0  # others may call it dead (lock free) after this many
KEEP_FINISHED_WORKERS = timedelta(days=7)


def _version() -> str:
    try:
        return metadata.version("studio")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return ""


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name ([] if unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().decode(errors="replace").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def process_started(pid: int) -> str:
    """The start time of `pid` in clock ticks since boot ('' if unknown): tells a reused pid."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def pid_is_gone(worker: Worker) -> bool:
    """On this host only: is the process that registered as `worker` certainly gone?"""
    if worker.host != socket.gethostname():
        return False
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # someone else's process now has that pid: compare start times
    fields = _stat(worker.pid)
    if fields and fields[0] == "Z":
        return True  # dead, only not reaped yet by its parent
    started = fields[19] if len(fields) > 19 else ""
    return bool(worker.process_started and started and started != worker.process_started)


# --- this process's registration ---------------------------------------------------------------


class Registration:
    """This worker process's row, lease and heartbeat thread."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.name = engine.process_name()
        self.worker: Worker | None = None
        self.interval = settings.STUDIO_HEARTBEAT_SECONDS
        self.last_lease = time.monotonic()
        self.stop_event = threading.Event()
        self.lock_connection = None
        self.drain_requested = False
        self.exit_signalled = False
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        # A worker (re)started while the database restarts waits for it rather than exiting.
        delay = 0.5
        while True:
            try:
                self.worker = Worker.objects.create(
                    name=self.name,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    process_started=process_started(os.getpid()),
                    version=_version(),
                    capacity=self.capacity,
                )
                break
            except DatabaseError:
                log.warning("cannot register worker %s yet; retrying in %ss", self.name, delay)
                close_old_connections()
                connection.close()
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.thread = threading.Thread(target=self._loop, name="studio-registry", daemon=True)
        self.thread.start()
        _current[0] = self

    def fenced(self) -> bool:
        """True while this worker cannot prove it holds its lease (PostgreSQL only)."""
        if not _on_postgresql():
            return False
        return time.monotonic() - self.last_lease > FENCE_AFTER_BEATS * self.interval

    def stop(self) -> None:
        """A clean exit: no longer counted as alive."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(self.interval + 5)
        try:
            Worker.objects.filter(pk=self.worker.pk).update(
                state=Worker.State.STOPPED, stopped_at=timezone.now()
            )
        except DatabaseError:
            log.warning("could not mark worker %s stopped", self.name)
        finally:
            close_old_connections()
        self._drop_lock()
        _current[0] = None

    # The heartbeat thread --------------------------------------------------------------------

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            ok = False
            try:
                ok = self.beat()
            except Exception:
                log.warning("worker heartbeat failed; retrying", exc_info=True)
                connection.close()
            # After a failure, try again soon: the lease must be back before the fence falls.
            if self.stop_event.wait(self.interval if ok else min(self.interval, 0.5)):
                break
        connection.close()

    def beat(self) -> bool:
        """Heartbeat (holding the lease on PostgreSQL); True if it was written."""
        if _on_postgresql() and not self._hold_lock():
            return False
        now = timezone.now()
        updated = Worker.objects.filter(pk=self.worker.pk).update(heartbeat_at=now)
        if not updated:  # pruned, or someone deleted it: register again under the same name
            self.worker.pk = None
            self.worker.save(force_insert=True)
        self.last_lease = time.monotonic()
        row = Worker.objects.filter(pk=self.worker.pk).values("state", "drain_requested_at")[0]
        if row["state"] == Worker.State.LOST:
            # Declared lost while paused or cut off: its runs were settled elsewhere (and our
            # supervisors refuse to write to them); we are alive again, so say so.
            log.warning("worker %s was declared lost; registering as alive again", self.name)
            Worker.objects.filter(pk=self.worker.pk).update(state=Worker.State.ALIVE)
        if row["drain_requested_at"] is not None:
            self._drain()
        return True

    def _drain(self) -> None:
        """Asked to drain: stop claiming, let the runs held now finish, then exit."""
        if not self.drain_requested:
            self.drain_requested = True
            log.info("worker %s asked to drain: no new runs; exiting when idle", self.name)
            engine.begin_drain(float("inf"))
            Worker.objects.filter(pk=self.worker.pk).update(state=Worker.State.DRAINING)
        held = Run.objects.filter(
            status=RunStatus.RUNNING, worker__startswith=self.worker.run_prefix
        ).exists()
        if not held and not self.exit_signalled:
            self.exit_signalled = True
            os.kill(os.getpid(), signal.SIGTERM)  # the consumer's own graceful stop

    def _hold_lock(self) -> bool:
        """Hold (or take again) this worker's advisory lock on a session of its own."""
        try:
            if self.lock_connection is None:
                self.lock_connection = connections.create_connection("default")
                with self.lock_connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, self.worker.pk]
                    )
                    if not cursor.fetchone()[0]:
                        # An earlier session of ours lingers (a half-open connection); the
                        # server drops it soon. Until then we are not sure of our lease.
                        self._drop_lock()
                        return False
            else:
                with self.lock_connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
            return True
        except DatabaseError:
            log.warning("worker %s lost its lease session; taking it again", self.name)
            self._drop_lock()
            return False

    def _drop_lock(self) -> None:
        if self.lock_connection is not None:
            try:
                self.lock_connection.close()
            except Exception:
                pass
            self.lock_connection = None


_current: list[Registration | None] = [None]


def _on_postgresql() -> bool:
    return connection.vendor == "postgresql"


def current() -> Registration | None:
    return _current[0]


def fenced() -> bool:
    registration = _current[0]
    return registration is not None and registration.fenced()


# --- the sweeper's side ------------------------------------------------------------------------


def lock_is_free(worker: Worker) -> bool:
    """PostgreSQL: nobody holds `worker`'s lease (its session, so its process, is gone)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, worker.pk])
        free = cursor.fetchone()[0]
        if free:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, worker.pk])
    return bool(free)


def certainly_dead(worker: Worker, now) -> bool:
    if pid_is_gone(worker):
        return True
    if connection.vendor == "postgresql":
        quiet = now - worker.heartbeat_at
        if quiet > timedelta(seconds=CERTAIN_AFTER_BEATS * settings.STUDIO_HEARTBEAT_SECONDS):
            return lock_is_free(worker)
    return False


def settle_dead_workers(me: str | None = None) -> int:
    """Settle the runs of workers that are certainly dead, and mark silent ones lost.

    Returns how many runs were settled."""
    now = timezone.now()
    lost_window = now - timedelta(seconds=settings.STUDIO_WORKER_LOST_SECONDS)
    settled = 0
    for worker in Worker.objects.alive().exclude(name=me or ""):
        certain = certainly_dead(worker, now)
        if not certain and worker.heartbeat_at >= lost_window:
            continue
        # The heartbeat we judged by is part of the guard: a worker that beat meanwhile stays.
        if not Worker.objects.filter(
            pk=worker.pk, state=worker.state, heartbeat_at=worker.heartbeat_at
        ).update(state=Worker.State.LOST, stopped_at=now):
            continue
        # What became of its runs, in all and per project (a project admin sees only theirs).
        outcome: dict = {"total": {}, "by_project": {}}
        runs = Run.objects.filter(status=RunStatus.RUNNING, worker__startswith=worker.run_prefix)
        if not certain:  # only silent (paused?): its runs go once they too are silent
            runs = runs.filter(heartbeat_at__lt=lost_window)
        for run in runs:
            status = lifecycle.settle_lost(run, retry_delay=engine.backoff_delay(run.attempt))
            if status is not None:
                key = {"waiting": "retried"}.get(status, status)
                for counts in (
                    outcome["total"],
                    outcome["by_project"].setdefault(str(run.project_id), {}),
                ):
                    counts[key] = counts.get(key, 0) + 1
                settled += 1
        Worker.objects.filter(pk=worker.pk).update(outcome=outcome)
        log.warning(
            "worker %s is gone; settled its runs: %s", worker.name, outcome["total"] or "none"
        )
    Worker.objects.filter(
        state__in=(Worker.State.STOPPED, Worker.State.LOST),
        stopped_at__lt=now - KEEP_FINISHED_WORKERS,
    ).delete()
    return settled
