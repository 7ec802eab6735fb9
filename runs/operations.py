"""Bulk operations: cancel or re-run many runs, in the background, in batches.

`start()` resolves the runs (explicit ids, or a filter) into a list of ids once and stores an
`Operation`. Every worker runs an `OperationsThread` that takes one batch at a time of the oldest
unfinished operation (the row locked, skipping rows another worker holds), in one transaction
that also advances the operation's counters: no request ever does the whole job, a crash loses
at most one uncommitted batch, and there is no queue message to lose.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from django.db import close_old_connections, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from . import service
from .models import ACTIVE_STATUSES, Operation, Project, Run

log = logging.getLogger(__name__)

BATCH_SIZE = 200
MAX_RUNS = 50_000  # per operation: a bigger job is several operations (narrow the filter)
MAX_NEW_RUN_IDS = 1000  # re-run results listed in the operation
MAX_ERRORS = 100


class TooManyRuns(ValueError):
    pass


def targets(kind: str, runs: QuerySet[Run]) -> QuerySet[Run]:
    """The runs an operation of `kind` acts on among `runs`: a cancel only touches unfinished
    ones (so the count a user confirms is the count that will change)."""
    if kind == Operation.Kind.CANCEL:
        runs = runs.filter(status__in=ACTIVE_STATUSES)
    return runs


def start(
    project: Project,
    kind: str,
    *,
    run_ids: Iterable[str] | None = None,
    runs: QuerySet[Run] | None = None,
    filter: dict | None = None,
    created_by: str = "",
) -> Operation:
    """Store an operation over `run_ids` (this project's only) or the runs of `runs`, and queue
    it. Ids that name no run of the project are reported as skipped, never looked up elsewhere."""
    not_found: list[str] = []
    if run_ids is not None:
        wanted = list(dict.fromkeys(run_ids))
        known = set(Run.objects.filter(project=project, pk__in=wanted).values_list("pk", flat=True))
        ids = [pk for pk in wanted if pk in known]
        not_found = [pk for pk in wanted if pk not in known]
    else:
        ids = list(
            targets(kind, runs.filter(project=project))
            .order_by("created_at", "id")
            .values_list("pk", flat=True)[: MAX_RUNS + 1]
        )
    if len(ids) > MAX_RUNS:
        raise TooManyRuns(f"at most {MAX_RUNS} runs per operation")
    with transaction.atomic():
        operation = Operation.objects.create(
            project=project,
            kind=kind,
            run_ids=ids,
            filter=filter,
            total=len(ids) + len(not_found),
            processed=len(not_found),
            skipped=len(not_found),
            result={"not_found": not_found[:MAX_ERRORS]} if not_found else {},
            created_by=created_by,
        )
    return operation


def process_next() -> bool:
    """Do one batch of the oldest unfinished operation that no other worker is on; False if
    there was none."""
    with transaction.atomic():
        operation = (
            Operation.objects.select_for_update(skip_locked=True)
            .filter(state__in=(Operation.State.PENDING, Operation.State.RUNNING))
            .order_by("created_at")
            .first()
        )
        if operation is None:
            return False
        _batch(operation)
    return True


def process_batch(operation_id: str) -> bool:
    """Do the next batch of `operation_id`; True if more remain."""
    with transaction.atomic():
        # Locked for the batch: another worker on the same operation waits, then goes on from
        # where this one stopped.
        operation = Operation.objects.select_for_update().filter(pk=operation_id).first()
        if operation is None or operation.state == Operation.State.COMPLETED:
            return False
        return _batch(operation)


def _batch(operation: Operation) -> bool:
    """Inside the caller's transaction, with the operation's row locked."""
    done = operation.position
    batch = operation.run_ids[done : done + BATCH_SIZE]
    runs = {run.pk: run for run in Run.objects.filter(pk__in=batch, project=operation.project)}
    counts = {"succeeded": 0, "skipped": 0, "failed": 0}
    result = dict(operation.result or {})
    for run_id in batch:
        outcome = _apply(operation, runs.get(run_id), run_id, result)
        counts[outcome] += 1
    now = timezone.now()
    finished = done + len(batch) >= len(operation.run_ids)
    Operation.objects.filter(pk=operation.pk).update(
        position=done + len(batch),
        processed=F("processed") + len(batch),
        succeeded=F("succeeded") + counts["succeeded"],
        skipped=F("skipped") + counts["skipped"],
        failed=F("failed") + counts["failed"],
        result=result,
        state=Operation.State.COMPLETED if finished else Operation.State.RUNNING,
        finished_at=now if finished else None,
        updated_at=now,
    )
    return not finished


def _apply(operation: Operation, run: Run | None, run_id: str, result: dict) -> str:
    if run is None:  # deleted (pruned) since the operation started
        return "skipped"
    if operation.kind == Operation.Kind.CANCEL:
        accepted, _ = service.cancel_run(
            run, reason=f"cancelled in bulk by {operation.created_by or 'an operator'}"
        )
        return "succeeded" if accepted else "skipped"
    try:
        created = service.rerun(
            run,
            created_by=operation.created_by or None,
            trigger_kind=Run.Trigger.API
            if operation.created_by.startswith("token:")
            else Run.Trigger.MANUAL,
        )
    except service.RunError as exc:  # the task is gone, or its input no longer validates
        errors = result.setdefault("errors", [])
        if len(errors) < MAX_ERRORS:
            errors.append({"run_id": run_id, "message": exc.message})
        return "failed"
    new = result.setdefault("new_run_ids", [])
    if len(new) < MAX_NEW_RUN_IDS:
        new.append(created.run.pk)
    return "succeeded"


class OperationsThread(threading.Thread):
    """In every worker: takes operations batch by batch. A thread of its own, not a queue
    message, so that a bulk cancel goes through even while every worker thread is busy with
    the very runs it cancels."""

    def __init__(self, interval: float, stop: threading.Event):
        super().__init__(name="studio-operations", daemon=True)
        self.interval = interval
        self.stop_event = stop

    def run(self) -> None:
        while not self.stop_event.is_set():
            busy = False
            try:
                busy = process_next()
            except Exception:
                log.exception("bulk operation batch failed; trying again")
            finally:
                close_old_connections()
            if not busy and self.stop_event.wait(self.interval):
                return
