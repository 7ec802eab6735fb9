"""The Huey side of Studio: one task that executes a run. The queue is only transport; the
database says what should happen, so a duplicate or stale message is harmless."""

from __future__ import annotations

from huey.contrib.djhuey import HUEY


@HUEY.task(retries=0, context=False)
def execute_run(run_id: str, task_id: str | None = None) -> None:
    from .worker.claim import execute

    execute(run_id, task_id)
