"""The scheduler loop: a thread in every worker that fires due schedules.

It sleeps until the next schedule is due, but never longer than
STUDIO_SCHEDULER_MAX_SLEEP_SECONDS, because another process may add a schedule due sooner: so a
slot fires within about a second on an idle system, and sooner when it was already known.
Any number of workers run it at once; engine.tick() makes that safe.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from ..worker import claim
from . import engine, sync

log = logging.getLogger("runs.scheduler")

SYNC_EVERY_SECONDS = 2.0


class SchedulerThread(threading.Thread):
    def __init__(self, stop: threading.Event | None = None):
        super().__init__(name="studio-scheduler", daemon=True)
        self.stop_event = stop or threading.Event()

    def stopping(self) -> bool:
        # A draining worker takes no new work, and firing is new work for every worker.
        return self.stop_event.is_set() or claim.draining()

    def run(self) -> None:
        log.info("scheduler loop started")
        next_sync = 0.0
        while not self.stopping():
            close_old_connections()
            try:
                if time.monotonic() >= next_sync:
                    # File schedules: cheap when no file changed (sizes and times compared).
                    next_sync = time.monotonic() + SYNC_EVERY_SECONDS
                    sync.sync_files()
                result = engine.tick()
                if result.fired:
                    log.info("scheduler fired %d run(s)", len(result.fired))
                # A full batch means more may be due right now: go again without sleeping.
                if result.schedules >= settings.STUDIO_SCHEDULER_BATCH:
                    continue
                delay = self._until_next_due()
            except Exception:
                log.exception("scheduler tick failed; trying again shortly")
                delay = settings.STUDIO_SCHEDULER_MAX_SLEEP_SECONDS
            finally:
                close_old_connections()
            self.stop_event.wait(delay)
        log.info("scheduler loop stopped")

    def _until_next_due(self) -> float:
        ceiling = settings.STUDIO_SCHEDULER_MAX_SLEEP_SECONDS
        due = engine.next_due_at()
        if due is None:
            return ceiling
        return max(0.0, min(ceiling, (due - timezone.now()).total_seconds()))


def start_scheduler() -> SchedulerThread | None:
    """Start the loop in this process (a worker), unless STUDIO_SCHEDULER is off."""
    if not settings.STUDIO_SCHEDULER:
        return None
    thread = SchedulerThread()
    thread.start()
    return thread


def run_until(stop_after: float) -> None:
    """Run the loop in the foreground for `stop_after` seconds (for the CLI and benchmarks)."""
    thread = SchedulerThread()
    thread.start()
    time.sleep(stop_after)
    thread.stop_event.set()
    thread.join()
