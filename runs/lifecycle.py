"""TEMPORARY stand-in for the lead's runs/lifecycle.py (same names and signatures, the subset
workflows use). When main's lifecycle lands, `git merge main` and take main's file whole."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import Run, RunEvent, RunStatus

log = logging.getLogger(__name__)
IDLE = (RunStatus.PENDING, RunStatus.WAITING)
_TERMINAL = {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED}
_hooks: dict[str, list] = {"in_transaction": [], "after_commit": []}
_release: list = []


def error(message: Any, code: str, detail: Any = None) -> dict:
    return {"message": str(message), "code": str(code or "error"), "detail": detail}


def on_terminal(fn: Callable, phase: str = "after_commit") -> Callable:
    if fn not in _hooks[phase]:
        _hooks[phase].append(fn)
    return fn


def on_release(fn: Callable) -> Callable:
    if fn not in _release:
        _release.append(fn)
    return fn


def _move(run: Run, fields: dict, *, guard: Q, event, now: datetime) -> bool:
    fields = {**fields, "updated_at": now}
    with transaction.atomic():
        if not Run.objects.filter(guard, pk=run.pk).update(**fields):
            return False
        if event:
            RunEvent.objects.create(run_id=run.pk, event_type=event[0], payload=event[1])
        for k, v in fields.items():
            setattr(run, k, v)
        if run.status in _TERMINAL:
            for fn in _hooks["in_transaction"]:
                fn(run)

            def after():
                for fn in _hooks["after_commit"]:
                    try:
                        fn(run)
                    except Exception:
                        log.exception("hook failed")

            transaction.on_commit(after)
    return True


def create(run: Run, *, task_id: str | None = None, enqueue_run: bool = True) -> None:
    run.status = RunStatus.PENDING
    with transaction.atomic():
        run.save(force_insert=True)
        RunEvent.objects.create(
            run=run,
            event_type="run.created",
            payload={
                "target": run.target,
                "trigger_kind": run.trigger_kind,
                "created_by": run.created_by,
            },
            created_at=run.created_at,
        )
        if enqueue_run:
            from .service import enqueue

            transaction.on_commit(lambda: enqueue(run.pk, task_id=task_id))


def start(run: Run) -> bool:
    now = timezone.now()
    return _move(
        run,
        {"status": RunStatus.RUNNING, "started_at": run.started_at or now, "attempt": 1},
        guard=Q(status=RunStatus.PENDING, cancel_requested_at__isnull=True),
        event=("run.started", {"attempt": 1, "worker": None}),
        now=now,
    )


def complete(run: Run, output: Any, *, worker: str | None = None, **_) -> bool:
    now = timezone.now()
    return _move(
        run,
        {"status": RunStatus.COMPLETED, "completed_at": now, "output": output, "error": None},
        guard=Q(status=RunStatus.RUNNING),
        event=("run.completed", {"output": output}),
        now=now,
    )


def fail(run: Run, err: dict, *, worker: str | None = None, **_) -> bool:
    now = timezone.now()
    idle = run.status in IDLE
    return _move(
        run,
        {
            "status": RunStatus.FAILED,
            "completed_at": now,
            "error": err,
            "waiting_reason": None,
            "resume_at": None,
        },
        guard=Q(status=run.status) if idle else Q(status=RunStatus.RUNNING),
        event=("run.failed", {"error": err}),
        now=now,
    )


@dataclass
class CancelResult:
    accepted: bool
    run: Run


def cancel(run: Run, reason: str = "cancelled by user") -> CancelResult:
    from . import service

    ok, run = service._cancel_run_legacy(run, reason=reason)
    return CancelResult(ok, run)


def acknowledge_cancel(run: Run, reason: str, *, worker: str | None = None, **_) -> bool:
    now = timezone.now()
    return _move(
        run,
        {"status": RunStatus.CANCELLED, "completed_at": now, "error": error(reason, "cancelled")},
        guard=Q(status=RunStatus.RUNNING),
        event=("run.cancelled", {"reason": reason}),
        now=now,
    )


def wait(run: Run, reason: str, resume_at: datetime | None = None) -> bool:
    now = timezone.now()
    return _move(
        run,
        {"status": RunStatus.WAITING, "waiting_reason": reason, "resume_at": resume_at},
        guard=Q(status=RunStatus.RUNNING, cancel_requested_at__isnull=True),
        event=(
            "run.waiting",
            {"reason": reason, "resume_at": resume_at.isoformat() if resume_at else None},
        ),
        now=now,
    )


def resume(run: Run) -> bool:
    now = timezone.now()
    reason = run.waiting_reason
    return _move(
        run,
        {"status": RunStatus.RUNNING, "waiting_reason": None, "resume_at": None},
        guard=Q(status=RunStatus.WAITING),
        event=("run.resumed", {"reason": reason}),
        now=now,
    )
