"""What people and clients do to a workflow run: decide an approval, send a signal, re-run it
(from scratch or from the failed step). Each writes its record and enqueues an advance."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from ..models import Run, RunEvent, WorkflowApproval, WorkflowSignal
from ..service import CreateResult, RunError
from ..validation import FieldError, json_problem
from .launch import create_workflow_run
from .queue import enqueue_advance


class AlreadyDecided(RunError):
    code = "already_decided"
    status = 409


class NotFound(RunError):
    code = "not_found"
    status = 404


class NotAWorkflow(RunError):
    code = "not_a_workflow"
    status = 409


class RunFinished(RunError):
    code = "run_finished"
    status = 409


def _require_workflow(run: Run) -> None:
    if run.kind != Run.Kind.WORKFLOW:
        raise NotAWorkflow(f"{run.pk} is a {run.kind} run, not a workflow run")


def decide_approval(
    run: Run, step_id: str, *, approved: bool, comment: str = "", by: str
) -> WorkflowApproval:
    """Approve or reject a pending approval; AlreadyDecided if it was decided (or expired)."""
    _require_workflow(run)
    now = timezone.now()
    status = WorkflowApproval.Status.APPROVED if approved else WorkflowApproval.Status.REJECTED
    with transaction.atomic():
        # Conditional on `pending`: two people deciding at once, or a decision racing the
        # expiry, leave exactly one outcome.
        updated = WorkflowApproval.objects.filter(  # not-a-transition: an approval's status
            run=run, step_id=step_id, status=WorkflowApproval.Status.PENDING
        ).update(status=status, decided_by=by[:150], decided_at=now, comment=comment or "")
        approval = WorkflowApproval.objects.filter(run=run, step_id=step_id).first()
        if approval is None:
            raise NotFound(f"no approval {step_id!r} on run {run.pk}")
        if not updated:
            raise AlreadyDecided(
                f"approval {step_id!r} was already {approval.status}"
                + (f" by {approval.decided_by}" if approval.decided_by else "")
            )
        RunEvent.objects.create(
            run=run,
            event_type="approval.decided",
            payload={"step_id": step_id, "status": status, "by": by, "comment": comment or ""},
        )
        enqueue_advance(run.pk)
    return approval


def send_signal(run: Run, event: str, payload: Any = None) -> WorkflowSignal:
    """Keep an event on the run; a wait_for_event step takes the first unconsumed one."""
    _require_workflow(run)
    if not isinstance(event, str) or not event.strip() or len(event) > 200 or json_problem(event):
        raise RunError(
            "event must be a non-empty string of at most 200 characters",
            errors=[FieldError("event", "must be a non-empty string (max 200)", "type")],
        )
    problem = json_problem(payload)
    if problem:
        raise RunError(f"payload: {problem}", errors=[FieldError("payload", problem, "storable")])
    if run.is_terminal:
        raise RunFinished(f"run {run.pk} already ended {run.status}")
    with transaction.atomic():
        signal = WorkflowSignal.objects.create(run=run, event=event, payload=payload)
        RunEvent.objects.create(
            run=run, event_type="event.received", payload={"event": event, "payload": payload}
        )
        enqueue_advance(run.pk)
    return signal


def rerun_workflow(
    run: Run,
    *,
    from_failed: bool = False,
    created_by: str | None = None,
    trigger_kind: str = Run.Trigger.MANUAL,
) -> CreateResult:
    """A new run with the same input. From failed: with the original graph, reusing the output
    of every step that completed with the same target and the same resolved input."""
    _require_workflow(run)
    metadata: dict = {"rerun_of": run.pk}
    graph = None
    if from_failed:
        metadata["rerun_from_failed"] = run.pk
        graph = run.workflow_graph.graph
    return create_workflow_run(
        run.project,
        target=run.target,
        input=run.input,
        name=run.name,
        timeout_seconds=run.timeout_seconds,
        trigger_kind=trigger_kind,
        created_by=created_by,
        metadata=metadata,
        graph=graph,
    )
