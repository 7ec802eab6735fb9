"""Transport: hand runs to Huey. The queue is only transport; the database says what should
happen, so a duplicate or stale message is harmless and a lost one is found by the sweeper.

The Huey task is declared here so that every process (web, worker, scheduler) can enqueue it, but
what it does lives with the worker (`runs.worker`), which registers itself with `set_executor`:
this module imports no worker code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from huey.contrib.djhuey import HUEY

log = logging.getLogger(__name__)

_executor: Callable[[str, str | None], None] | None = None


def set_executor(fn: Callable[[str, str | None], None]) -> None:
    """Say what executing a run means in this process (the worker registers itself)."""
    global _executor
    _executor = fn


@HUEY.task(retries=0, context=False)
def execute_run(run_id: str, task_id: str | None = None) -> None:
    if _executor is None:
        raise RuntimeError("no run executor registered in this process (is runs.worker loaded?)")
    _executor(run_id, task_id)


def enqueue(run_id: str, *, task_id: str | None = None, delay: float | None = None) -> None:
    """Hand a run to the queue. A failure here is logged, not raised: the sweeper re-enqueues.

    The task id rides along so that a worker can claim the run without reading it first."""
    try:
        if delay:
            execute_run.schedule((run_id, task_id), delay=delay)
        else:
            execute_run(run_id, task_id)
    except Exception:
        log.exception("could not enqueue %s; the sweeper will pick it up", run_id)
