"""advance(): move a workflow run forward as far as it can go right now.

Called whenever something it waits for may have happened (a child ended, a timer fired, an
approval was decided, a signal arrived, a cancel was requested). It runs in one transaction under
the workflow run's row lock (SQLite: the IMMEDIATE transaction's write lock), so two workers, a
duplicate message or the sweeper never advance the same run at once; and since everything it
decides (child runs created, step rows, the run's status) commits together or not at all, a
crash mid-advance loses nothing and starts nothing twice: the next advance simply redoes it.

It never runs user code: the graph is data and references are resolved by `runs.workflows.graph`.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .. import lifecycle
from ..compiled import Compiled, pipelined, update_row
from ..events import SMALL_BATCH, insert_events
from ..models import (
    ACTIVE_STATUSES,
    Run,
    RunStatus,
    StepStatus,
    WorkflowApproval,
    WorkflowGraph,
    WorkflowSignal,
    WorkflowStep,
)
from ..validation import schema_errors
from ..workflows.graph import MissingReference, describe_ref, resolve, rule_met
from .queue import enqueue_advance

log = logging.getLogger(__name__)

# The precedence of a waiting workflow's reason when several steps wait at once.
WAITING_REASONS = {"approval": 0, "wait_for_event": 1, "sleep": 2}
REASON_NAMES = {"approval": "approval", "wait_for_event": "event", "sleep": "sleep"}
CHILD_KINDS = ("task", "map", "workflow")
# What an advance reads of a child run: never its logs (up to a MiB each); its output only for a
# task or workflow step (a map reads its items' outputs once, when it completes).
CHILD_FIELDS = ("id", "status", "error", "waiting_reason", "cancel_requested_at")
FAULT_ENV = "STUDIO_TEST_CRASH_IN_ADVANCE"  # tests: die after starting this step, before commit


def advance(run_id: str, *, ended_child: Run | None = None) -> None:
    """`ended_child`: a child of `run_id` as its terminal transition left it (the hook that
    calls this has it in hand): its row need not be read again. A terminal run never changes."""
    with transaction.atomic():
        found = _LOCKED_RUN.fetch(run_id)
        if not found:
            return
        run = found[0]
        advance_ = Advance(run, _graph_of(run))
        if ended_child is not None and ended_child.is_terminal:
            advance_.known[ended_child.pk] = Child(
                ended_child.pk,
                ended_child.status,
                ended_child.error,
                ended_child.waiting_reason,
                ended_child.cancel_requested_at,
                ended_child.output,
            )
        advance_.go()


# The two reads of every advance, compiled once per thread (runs.compiled): the run under its row
# lock (its own row only, not its project's), and its steps.
_LOCKED_RUN = Compiled(
    lambda run_id: (
        Run.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(pk=run_id, kind=Run.Kind.WORKFLOW)
        .order_by()
    )
)
_STEPS = Compiled(lambda run_id: WorkflowStep.objects.filter(run_id=run_id).order_by("position"))


# A run's graph never changes once stored (WorkflowGraph), so each process reads it once per run
# rather than on every advance. Bounded: the oldest entries go first.
_GRAPHS: dict[str, tuple[dict, dict[str, dict]]] = {}
_GRAPHS_MAX = 512
_graphs_lock = threading.Lock()


def _graph_of(run: Run) -> tuple[dict, dict[str, dict]]:
    """(graph, steps by id) of `run`; shared by the advances of this process: read only."""
    cached = _GRAPHS.get(run.pk)
    if cached is not None:
        return cached
    graph = WorkflowGraph.objects.filter(run_id=run.pk).values_list("graph", flat=True).get()
    cached = (graph, {s["id"]: s for s in graph["steps"]})
    with _graphs_lock:
        while len(_GRAPHS) >= _GRAPHS_MAX:
            del _GRAPHS[next(iter(_GRAPHS))]
        _GRAPHS[run.pk] = cached
    return cached


class Child:
    """A child run as an advance sees it (a tuple's worth of columns, not a model instance: a
    1,000-item map reads its children on every advance)."""

    __slots__ = ("pk", "status", "error", "waiting_reason", "cancel_requested_at", "output")

    def __init__(self, pk, status, error, waiting_reason, cancel_requested_at, output=None):
        self.pk = pk
        self.status = status
        self.error = error
        self.waiting_reason = waiting_reason
        self.cancel_requested_at = cancel_requested_at
        self.output = output

    @property
    def cancelling(self) -> bool:
        return self.cancel_requested_at is not None and self.status in ACTIVE_STATUSES


class Advance:
    def __init__(self, run: Run, graph: tuple[dict, dict[str, dict]] | None = None):
        self.run = run
        self.now = timezone.now()
        self.graph, self.specs = graph or _graph_of(run)
        self.steps: dict[str, WorkflowStep] = {s.step_id: s for s in _STEPS.fetch(run.pk)}
        # Written once, at the end of the pass (_save): step rows by changed field, the run's
        # events, and the task runs this pass starts.
        self.dirty: dict[str, set[str]] = {}
        self.events: list[tuple[str, dict, datetime]] = []
        self.created: dict[str, tuple[Run, str]] = {}
        self._definitions: dict[str, Any] = {}
        self._children: dict[str, Any] | None = None
        self.known: dict[str, Child] = {}  # ended children whose rows need no reading
        self._with_items = False

    # --- the pass ---------------------------------------------------------------------------

    def go(self) -> None:
        run = self.run
        if run.is_terminal:
            self._stop_everything(f"the workflow run ended {run.status}")
            self._save()
            return
        if run.status == RunStatus.PENDING:
            if run.cancel_requested_at is not None:
                lifecycle.cancel(run, run.cancel_reason or "cancelled by request")
                run.refresh_from_db()
                self._stop_everything("the workflow run was cancelled")
                self._save()
                return
            if self._no_free_slot():
                return  # stays pending; a run of this workflow that ends advances the next one
            if not lifecycle.start(run):
                return
            deadline = self._deadline()
            if deadline:
                self._timer(deadline)
        stopping = self._stop_reason()
        if stopping:
            self._stop_everything(stopping[0])
        changed = True
        while changed:
            changed = False
            for step in self.steps.values():
                if step.status in (StepStatus.RUNNING, StepStatus.WAITING):
                    changed |= self._poll(step, stopping is not None)
                elif step.status == StepStatus.PENDING and not stopping:
                    deps = [self.steps[d] for d in step.depends_on]
                    if all(d.ended for d in deps):
                        changed |= self._begin(step, deps)
        self._save()
        self._settle(stopping)

    def _no_free_slot(self) -> bool:
        """`concurrency_limit`: at most that many runs of this workflow at once, oldest first."""
        limit = self.graph.get("concurrency_limit")
        if not limit:
            return False
        if connection.vendor == "postgresql":
            # Two pending runs of one workflow advancing at once must not both see a free slot.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self.run.target])
        same = Run.objects.filter(kind=Run.Kind.WORKFLOW, target=self.run.target)
        busy = same.filter(status__in=[RunStatus.RUNNING, RunStatus.WAITING]).count()
        if busy >= limit:
            return True
        older = same.filter(status=RunStatus.PENDING, created_at__lt=self.run.created_at)
        return older.count() >= limit - busy

    def _save(self) -> None:
        # None of these writes' answers is read, so on PostgreSQL they go in one round trip
        # (a step hand-off's next child, the steps' events and two step rows) unless the events
        # are many enough for COPY, which a pipeline cannot carry.
        with pipelined(enabled=len(self.events) <= SMALL_BATCH):
            if self.created:
                runs, task_ids = zip(*self.created.values(), strict=True)
                lifecycle.create_many(runs, task_ids=task_ids)
                self.created.clear()
            if self.events:
                insert_events(self.run.pk, self.events)  # in order; a few rows are one INSERT
                self.events.clear()
            for step_id, fields in self.dirty.items():
                # Only the changed columns (a map's items and child ids are long); one UPDATE
                # per step costs less than bulk_update's CASE per column. Steps are written
                # only here, under the run's lock, so a plain UPDATE by primary key will do.
                step = self.steps[step_id]
                values = {f: getattr(step, f) for f in fields}
                update_row(WorkflowStep, step.pk, {**values, "updated_at": self.now})
        self.dirty.clear()

    # --- helpers ------------------------------------------------------------------------------

    def _event(self, event_type: str, step: WorkflowStep, **payload: Any) -> None:
        self.events.append((event_type, {"step_id": step.step_id, **payload}, timezone.now()))

    def _set(self, step: WorkflowStep, **fields: Any) -> None:
        for k, v in fields.items():
            setattr(step, k, v)
        self.dirty.setdefault(step.step_id, set()).update(fields)

    def _end(self, step: WorkflowStep, status: str, *, output=None, error=None, **extra) -> None:
        self._set(
            step,
            status=status,
            output=output,
            error=error,
            completed_at=self.now,
            resume_at=None,
            retrying=False,
            started_at=step.started_at or (self.now if status != StepStatus.SKIPPED else None),
        )
        event = {
            StepStatus.COMPLETED: "step.completed",
            StepStatus.FAILED: "step.failed",
            StepStatus.SKIPPED: "step.skipped",
            StepStatus.CANCELLED: "step.cancelled",
        }[status]
        payload: dict = dict(extra)
        if step.child_run_ids and step.kind != "map":
            payload["child_run_id"] = step.child_run_ids[-1]
        if error is not None:
            payload["error"] = error
        self._event(event, step, **payload)

    def _fail_step(self, step: WorkflowStep, message: str, code: str, detail=None) -> None:
        self._end(step, StepStatus.FAILED, error=lifecycle.error(message, code, detail))

    def _children_of(self, *, items: bool = False) -> dict[str, Any]:
        """The children of the task and workflow steps still going (those of ended steps are
        never looked at); with `items`, those of maps too (a map polls by counts: _poll_map)."""
        if self._children is None or (items and not self._with_items):
            going = [s for s in self.steps.values() if not s.ended and s.kind in CHILD_KINDS]
            wanted = [
                i for s in going if s.kind != "map" for i in s.child_run_ids if i not in self.known
            ]
            mapped = [i for s in going if s.kind == "map" for i in s.child_run_ids] if items else []
            children: dict[str, Any] = dict(self.known)
            runs = Run.objects.order_by()
            if wanted:
                for row in runs.filter(pk__in=wanted).values_list(*CHILD_FIELDS, "output"):
                    children[row[0]] = Child(*row)
            if mapped:
                for row in runs.filter(pk__in=mapped).values_list(*CHILD_FIELDS):
                    children[row[0]] = Child(*row)
            # Started by this pass, not stored yet (_save stores them).
            children.update((pk, run) for pk, (run, _) in self.created.items())
            self._children, self._with_items = children, items
        return self._children

    def _outputs(self) -> dict:
        return {sid: s.output for sid, s in self.steps.items() if s.status == StepStatus.COMPLETED}

    def _resolve(self, value: Any, **item: Any) -> Any:
        return resolve(value, input=self.run.input, outputs=self._outputs(), **item)

    def _timer(self, when: datetime) -> None:
        enqueue_advance(self.run.pk, delay=max(0.0, (when - self.now).total_seconds()) + 0.05)

    def _deadline(self) -> datetime | None:
        if not self.run.timeout_seconds or not self.run.started_at:
            return None
        return self.run.started_at + timedelta(seconds=self.run.timeout_seconds)

    def _stop_reason(self) -> tuple[str, str] | None:
        """(why, how): the workflow is being cancelled or has timed out."""
        if self.run.cancel_requested_at is not None:
            return (self.run.cancel_reason or "cancelled by request", "cancelled")
        deadline = self._deadline()
        if deadline and self.now >= deadline:
            return (f"the workflow timed out after {self.run.timeout_seconds}s", "timeout")
        return None

    # --- starting a step ----------------------------------------------------------------------

    def _begin(self, step: WorkflowStep, deps: list[WorkflowStep]) -> bool:
        spec = self.specs[step.step_id]
        outcomes = [d.status for d in deps]
        rule = spec.get("trigger_rule") or "all_success"
        met = rule_met(rule, outcomes)
        if not met:
            self._end(step, StepStatus.SKIPPED, reason=f"trigger rule {rule} not met")
            return True
        try:
            for key, wanted in (("when", True), ("unless", False)):
                if spec.get(key) is not None and bool(self._resolve(spec[key])) is not wanted:
                    self._end(step, StepStatus.SKIPPED, reason=f"{key} condition")
                    return True
        except MissingReference as exc:
            self._missing(step, exc)
            return True
        self._set(step, started_at=self.now)
        reused = self._reuse(step, spec)
        if reused:
            return True
        try:
            getattr(self, f"_begin_{step.kind}")(step, spec)
        except MissingReference as exc:
            self._missing(step, exc)
        if os.environ.get(FAULT_ENV) == step.step_id:
            os._exit(3)  # a crash before commit: nothing of this advance may survive
        return True

    def _missing(self, step: WorkflowStep, exc: MissingReference) -> None:
        self._fail_step(
            step,
            f"step {step.step_id!r}: {describe_ref(exc.ref)} resolved to nothing ({exc.reason})",
            "reference_missing",
            {"path": describe_ref(exc.ref)},
        )

    def _reuse(self, step: WorkflowStep, spec: dict) -> bool:
        """Re-run from failed: take the output of the original run's step if it completed with
        the same target and the same resolved input."""
        original = (self.run.metadata or {}).get("rerun_from_failed")
        if not original or step.kind not in ("task", "workflow", "map"):
            return False
        try:
            resolved = self._resolved_input(step, spec)
        except MissingReference:
            return False
        old = WorkflowStep.objects.filter(
            run_id=original, step_id=step.step_id, status=StepStatus.COMPLETED
        ).first()
        if old is None or old.target != step.target or old.resolved_input != resolved:
            return False
        self._set(
            step,
            resolved_input=resolved,
            child_run_ids=old.child_run_ids,
            reused_from_run_id=old.reused_from_run_id or original,
        )
        self._end(step, StepStatus.COMPLETED, output=old.output, reused=True)
        return True

    def _resolved_input(self, step: WorkflowStep, spec: dict) -> Any:
        if step.kind == "map":
            return {
                "items": self._resolve(spec["items"]),
                "input": spec.get("input"),
                "config": spec.get("config"),
            }
        return {
            "input": self._resolve(spec.get("input") or {}),
            "config": self._resolve(spec.get("config") or {}),
        }

    def _create_child(
        self, step: WorkflowStep, spec: dict, input, config, item_index=None
    ) -> Run | None:
        from ..service import RunError, build_task_run, create_run

        metadata = {"step_id": step.step_id}
        if item_index is not None:
            metadata["item_index"] = item_index
        options = dict(
            target=spec["target"],
            input=input,
            config=config,
            parent_run=self.run,
            timeout_seconds=spec.get("timeout_seconds"),
            backoff_limit=spec.get("retries"),
            trigger_kind=self.run.trigger_kind,
            created_by=self.run.created_by,
            metadata=metadata,
        )
        try:
            if spec["kind"] == "workflow":
                child = create_run(self.run.project, **options).run
            else:
                # Validated now, stored with the pass's other writes (_save), in one go.
                child, definition = build_task_run(
                    self.run.project, **options, definition=self._definitions.get(spec["target"])
                )
                self._definitions[spec["target"]] = definition
                self.created[child.pk] = (child, definition.id)
        except RunError as exc:
            where = f" (item {item_index})" if item_index is not None else ""
            self._fail_step(step, f"step {step.step_id!r}{where}: {exc.message}", exc.code)
            return None
        self._set(step, child_run_ids=[*step.child_run_ids, child.pk])
        if self._children is not None:
            self._children[child.pk] = child
        return child

    def _begin_task(self, step: WorkflowStep, spec: dict) -> None:
        resolved = self._resolved_input(step, spec)
        self._set(step, resolved_input=resolved)
        if spec["kind"] == "workflow":
            child = self._create_child(step, spec, resolved["input"], None)
        else:
            child = self._create_child(step, spec, resolved["input"], resolved["config"])
        if child is not None:
            self._set(step, status=StepStatus.RUNNING)
            self._event("step.started", step, child_run_id=child.pk)

    _begin_workflow = _begin_task

    def _begin_map(self, step: WorkflowStep, spec: dict) -> None:
        items = self._resolve(spec["items"])
        if not isinstance(items, list):
            self._fail_step(
                step,
                f"step {step.step_id!r}: items must be a list, got {type(items).__name__}",
                "invalid_items",
            )
            return
        cap = settings.STUDIO_WORKFLOW_MAX_ITEMS
        if len(items) > cap:
            self._fail_step(
                step,
                f"step {step.step_id!r}: {len(items)} items is more than the cap of {cap} "
                "(STUDIO_WORKFLOW_MAX_ITEMS)",
                "too_many_items",
            )
            return
        self._set(
            step,
            items=items,
            resolved_input=self._resolved_input(step, spec),
            status=StepStatus.RUNNING,
        )
        self._event("step.started", step, items=len(items))
        if not items:
            self._end(step, StepStatus.COMPLETED, output=[])
            return
        self._launch_items(step, spec, active=0)

    def _launch_items(self, step: WorkflowStep, spec: dict, *, active: int) -> None:
        limit = spec.get("concurrency") or len(step.items)
        while len(step.child_run_ids) < len(step.items) and active < limit:
            index = len(step.child_run_ids)
            item = {"item": step.items[index], "has_item": True}
            try:
                input = self._resolve(spec.get("input") or {}, **item)
                config = self._resolve(spec.get("config") or {}, **item)
            except MissingReference as exc:
                self._missing(step, exc)
                return
            if self._create_child(step, spec, input, config, item_index=index) is None:
                return
            active += 1

    def _begin_sleep(self, step: WorkflowStep, spec: dict) -> None:
        if spec.get("seconds") is not None:
            until = self.now + timedelta(seconds=spec["seconds"])
        else:
            raw = self._resolve(spec["until"])
            until = parse_datetime(raw) if isinstance(raw, str) else None
            if until is None:
                self._fail_step(
                    step,
                    f"step {step.step_id!r}: until {raw!r} is not an ISO date-time",
                    "invalid_until",
                )
                return
            if timezone.is_naive(until):
                until = timezone.make_aware(until, timezone.utc)
        self._wait(step, until)

    def _wait(self, step: WorkflowStep, deadline: datetime | None, **payload) -> None:
        self._set(step, status=StepStatus.WAITING, resume_at=deadline)
        self._event(
            "step.waiting", step, until=deadline.isoformat() if deadline else None, **payload
        )
        if deadline:
            self._timer(deadline)

    def _step_deadline(self, spec: dict) -> datetime | None:
        t = spec.get("timeout_seconds")
        return self.now + timedelta(seconds=t) if t else None

    def _begin_approval(self, step: WorkflowStep, spec: dict) -> None:
        expires = self._step_deadline(spec)
        WorkflowApproval.objects.update_or_create(
            run=self.run,
            step_id=step.step_id,
            defaults={"message": spec["message"], "expires_at": expires, "requested_at": self.now},
        )
        self._event(
            "approval.requested",
            step,
            message=spec["message"],
            expires_at=expires.isoformat() if expires else None,
        )
        self._wait(step, expires, reason="approval")

    def _begin_wait_for_event(self, step: WorkflowStep, spec: dict) -> None:
        self._wait(step, self._step_deadline(spec), event=spec["event"])

    # --- polling a started step ---------------------------------------------------------------

    def _poll(self, step: WorkflowStep, stopping: bool) -> bool:
        return getattr(self, f"_poll_{step.kind}")(step, self.specs[step.step_id], stopping)

    def _poll_task(self, step: WorkflowStep, spec: dict, stopping: bool) -> bool:
        child = self._children_of().get(step.child_run_ids[-1]) if step.child_run_ids else None
        if child is None:
            self._fail_step(step, f"step {step.step_id!r}: its child run is gone", "child_missing")
            return True
        if child.status == RunStatus.COMPLETED:
            self._end(step, StepStatus.COMPLETED, output=child.output)
            return True
        if child.status == RunStatus.FAILED:
            self._end(step, StepStatus.FAILED, error=child.error)
            return True
        if child.status == RunStatus.CANCELLED:
            self._end(step, StepStatus.CANCELLED, error=child.error)
            return True
        retrying = child.status == RunStatus.WAITING and child.waiting_reason == "retry"
        if retrying != step.retrying:
            self._set(step, retrying=retrying)
            if retrying:
                self._event("step.retrying", step, child_run_id=child.pk, error=child.error)
        return False

    _poll_workflow = _poll_task

    def _poll_map(self, step: WorkflowStep, spec: dict, stopping: bool) -> bool:
        """Counts by status while items are going (a map polls on every advance); each item's
        own row only once all have ended."""
        ids = step.child_run_ids
        counts: dict[tuple[str, str | None], int] = {}
        stored = [i for i in ids if i not in self.created]  # this pass's are not stored yet
        if stored:
            # By parent and step rather than by id: 1,000 ids are a query's worth of parameters.
            counts = self._count(
                Run.objects.filter(parent_run_id=self.run.pk, metadata__step_id=step.step_id)
            )
            if sum(counts.values()) != len(stored):  # not only this step's items (never seen)
                counts = self._count(Run.objects.filter(pk__in=stored))
        present = sum(counts.values()) + len(ids) - len(stored)
        active = (
            len(ids)
            - len(stored)
            + sum(n for (status, _), n in counts.items() if status in ACTIVE_STATUSES)
        )
        failed = any(status == RunStatus.FAILED for status, _ in counts)
        retrying = counts.get((RunStatus.WAITING, "retry"), 0) > 0
        if retrying != step.retrying:
            self._set(step, retrying=retrying)
            if retrying:
                self._event("step.retrying", step)
        if not failed and not stopping and len(ids) < len(step.items):
            before = len(ids)
            self._launch_items(step, spec, active=active)
            if step.ended:
                return True
            if len(step.child_run_ids) != before:
                return False  # new children are running
        if present < len(ids) or active:
            return False
        if failed:
            errors = dict(
                Run.objects.order_by()
                .filter(pk__in=ids, status=RunStatus.FAILED)
                .values_list("pk", "error")
            )
            index, child_id = next((n, i) for n, i in enumerate(ids) if i in errors)
            error = errors[child_id] or {}
            self._fail_step(
                step,
                f"step {step.step_id!r}: item {index} failed: {error.get('message', 'failed')}",
                error.get("code") or "task_error",
                {"item_index": index, "child_run_id": child_id},
            )
        elif len(ids) < len(step.items) or any(
            status == RunStatus.CANCELLED for status, _ in counts
        ):
            self._end(step, StepStatus.CANCELLED)
        else:
            outputs = dict(Run.objects.order_by().filter(pk__in=ids).values_list("pk", "output"))
            self._end(step, StepStatus.COMPLETED, output=[outputs[i] for i in ids])
        return True

    @staticmethod
    def _count(runs) -> dict[tuple[str, str | None], int]:
        """{(status, waiting_reason): how many}"""
        rows = runs.order_by().values_list("status", "waiting_reason").annotate(n=Count("id"))
        return {(status, reason): n for status, reason, n in rows}

    def _poll_sleep(self, step: WorkflowStep, spec: dict, stopping: bool) -> bool:
        if step.resume_at and self.now >= step.resume_at:
            self._end(
                step, StepStatus.COMPLETED, output={"slept_until": step.resume_at.isoformat()}
            )
            return True
        return False

    def _poll_approval(self, step: WorkflowStep, spec: dict, stopping: bool) -> bool:
        approval = WorkflowApproval.objects.filter(run=self.run, step_id=step.step_id).first()
        if approval is None:
            self._fail_step(step, "its approval request is gone", "approval_missing")
            return True
        if approval.status == WorkflowApproval.Status.PENDING:
            if approval.expires_at and self.now >= approval.expires_at:
                expiring = WorkflowApproval.objects.filter(pk=approval.pk, status="pending")
                expired = WorkflowApproval.Status.EXPIRED
                expiring.update(status=expired, decided_at=self.now)  # not-a-transition: approval
                self._event("approval.decided", step, status="expired")
                self._fail_step(step, f"approval {step.step_id!r} expired", "approval_expired")
                return True
            return False
        decision = {
            "approved": approval.status == WorkflowApproval.Status.APPROVED,
            "by": approval.decided_by,
            "comment": approval.comment,
            "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
        }
        if approval.status == WorkflowApproval.Status.APPROVED:
            self._end(step, StepStatus.COMPLETED, output=decision)
        elif approval.status == WorkflowApproval.Status.REJECTED:
            self._end(
                step,
                StepStatus.FAILED,
                output=decision,
                error=lifecycle.error(
                    f"approval {step.step_id!r} was rejected by {approval.decided_by}"
                    + (f": {approval.comment}" if approval.comment else ""),
                    "approval_rejected",
                ),
            )
        else:
            self._fail_step(step, f"approval {step.step_id!r} expired", "approval_expired")
        return True

    def _poll_wait_for_event(self, step: WorkflowStep, spec: dict, stopping: bool) -> bool:
        signal = (
            WorkflowSignal.objects.filter(
                run=self.run, event=spec["event"], consumed_at__isnull=True
            )
            .order_by("id")
            .first()
        )
        if signal is not None:
            WorkflowSignal.objects.filter(pk=signal.pk).update(
                consumed_by_step=step.step_id, consumed_at=self.now
            )
            self._end(step, StepStatus.COMPLETED, output=signal.payload)
            return True
        if step.resume_at and self.now >= step.resume_at:
            self._fail_step(
                step,
                f"step {step.step_id!r}: no {spec['event']!r} event arrived in time",
                "timeout",
            )
            return True
        return False

    # --- cancel and timeout -------------------------------------------------------------------

    def _stop_everything(self, reason: str) -> None:
        """Cancel active children (and theirs), expire open approvals, end idle steps."""
        from ..service import cancel_run

        children = self._children_of(items=True)
        for step in self.steps.values():
            if step.ended:
                continue
            if step.status == StepStatus.PENDING:
                self._end(step, StepStatus.CANCELLED, reason=reason)
                continue
            if step.kind in CHILD_KINDS:
                for child_id in step.child_run_ids:
                    child = children.get(child_id)
                    if (
                        child is not None
                        and child.status in ACTIVE_STATUSES
                        and not child.cancelling
                    ):
                        child = Run.objects.get(pk=child_id)
                        _, child = cancel_run(child, reason=f"its workflow stopped: {reason}")
                        child.refresh_from_db()
                        children[child_id] = child
            else:
                if step.kind == "approval":
                    WorkflowApproval.objects.filter(  # not-a-transition: approvals
                        run=self.run, step_id=step.step_id, status="pending"
                    ).update(status=WorkflowApproval.Status.EXPIRED, decided_at=self.now)
                self._end(step, StepStatus.CANCELLED, reason=reason)

    # --- the workflow's own status ------------------------------------------------------------

    def _settle(self, stopping: tuple[str, str] | None) -> None:
        run = self.run
        steps = list(self.steps.values())
        if stopping:
            if any(not s.ended for s in steps):
                return  # children still winding down; their terminal hooks advance us again
            reason, how = stopping
            self._to_running()
            if how == "timeout":
                lifecycle.fail(run, lifecycle.error(reason, "timeout"))
            else:
                lifecycle.acknowledge_cancel(run, reason)
            return
        if all(s.ended for s in steps):
            failed = [
                s
                for s in steps
                if s.status == StepStatus.FAILED
                and not self.specs[s.step_id].get("continue_on_failure")
            ]
            self._to_running()
            if failed:
                first = failed[0]
                message = (first.error or {}).get("message") or "failed"
                lifecycle.fail(
                    run,
                    lifecycle.error(
                        f"step {first.step_id!r} failed: {message}",
                        "step_failed",
                        {"step_id": first.step_id, "error": first.error},
                    ),
                )
                return
            try:
                template = self.graph.get("output")
                if template is not None:
                    output = self._resolve(template)
                else:
                    output = {
                        s.step_id: s.output for s in steps if s.status == StepStatus.COMPLETED
                    }
            except MissingReference as exc:
                lifecycle.fail(
                    run,
                    lifecycle.error(
                        f"the workflow output: {describe_ref(exc.ref)} resolved to nothing ({exc.reason})",
                        "output_invalid",
                    ),
                )
                return
            schema = self.graph.get("output_schema")
            problems = schema_errors(schema, output) if schema else []
            if problems:
                lifecycle.fail(
                    run,
                    lifecycle.error(
                        "the workflow's output does not match its output_schema: "
                        + "; ".join(str(p) for p in problems),
                        "output_invalid",
                    ),
                )
                return
            lifecycle.complete(run, output)
            return
        busy = any(s.status == StepStatus.RUNNING for s in steps)
        waiting = sorted(
            (s for s in steps if s.status == StepStatus.WAITING),
            key=lambda s: WAITING_REASONS[s.kind],
        )
        if busy or not waiting:
            self._to_running()
            return
        reason = REASON_NAMES[waiting[0].kind]
        deadlines = [s.resume_at for s in waiting if s.resume_at]
        if self._deadline():
            deadlines.append(self._deadline())
        resume_at = min(deadlines) if deadlines else None
        if run.status == RunStatus.WAITING and run.waiting_reason == reason:
            if run.resume_at != resume_at:
                Run.objects.filter(pk=run.pk, status=RunStatus.WAITING).update(resume_at=resume_at)
            return
        self._to_running()
        lifecycle.wait(run, reason, resume_at)

    def _to_running(self) -> None:
        if self.run.status == RunStatus.WAITING:
            lifecycle.resume(self.run)
