"""The one path that creates, cancels and re-runs runs, for the API, dashboard, admin and CLI."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from . import lifecycle
from .definitions import TaskDefinition, discover
from .models import Project, Run
from .validation import (
    MAX_BACKOFF_LIMIT,
    MAX_TIMEOUT_SECONDS,
    FieldError,
    apply_defaults,
    json_problem,
    schema_errors,
)

log = logging.getLogger(__name__)


class RunError(Exception):
    """A request to create or change a run that cannot be honoured. `status` is the HTTP status."""

    code = "invalid_request"
    status = 422

    def __init__(
        self, message: str, *, errors: list[FieldError] | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors or []
        if code:
            self.code = code


class TargetNotFound(RunError):
    code = "target_not_found"


class InvalidInput(RunError):
    code = "invalid_input"


@dataclass
class CreateResult:
    run: Run
    duplicate: bool = False
    definition: TaskDefinition | None = field(default=None, repr=False)


def resolve_task(target: str, *, max_age: float = 0.0) -> TaskDefinition:
    """The task a `task:<id>` target names, or TargetNotFound saying what exists.

    `max_age`: the tasks directory as seen up to that many seconds ago will do (see
    TaskRegistry.discover), except that a task not found there is looked for again now, so
    one added a moment ago is never refused."""
    if not isinstance(target, str) or not target.startswith("task:"):
        raise TargetNotFound(
            f"target {target!r} must look like task:<id> or workflow:<id>",
            errors=[FieldError("target", "must look like task:<id> or workflow:<id>", "pattern")],
        )
    task_id = target.removeprefix("task:")
    found = discover(max_age=max_age)
    definition = found.get(task_id)
    if definition is None and max_age > 0:
        found = discover()
        definition = found.get(task_id)
    if definition is None:
        known = ", ".join(sorted(found.tasks)) or "none"
        raise TargetNotFound(
            f"no task with id {task_id!r} (available: {known})",
            errors=[FieldError("target", f"no task with id {task_id!r}", "exists")],
        )
    return definition


def _check_limit(name: str, value: Any, minimum: int, maximum: int) -> list[FieldError]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        return [FieldError(name, f"must be an integer of at least {minimum}", "minimum")]
    if value > maximum:
        return [FieldError(name, f"must be at most {maximum}", "maximum")]
    return []


def create_run(
    project: Project,
    *,
    target: str,
    input: dict | None = None,
    config: dict | None = None,
    name: str | None = None,
    public_id: str | None = None,
    parent_run: Run | None = None,
    batch_id: str | None = None,
    timeout_seconds: int | None = None,
    backoff_limit: int | None = None,
    trigger_kind: str = Run.Trigger.MANUAL,
    trigger_id: str | None = None,
    schedule_id: str | None = None,
    created_by: str | None = None,
    metadata: dict | None = None,
    start_mode: str | None = None,
    runtime_target_kind: str | None = None,
    tasks_max_age: float = 0.0,
) -> CreateResult:
    """Validate, store a pending run with its `run.created` event, and enqueue it after commit.

    A second call with the same `public_id` in the same project returns the first run with
    `duplicate=True` and enqueues nothing. `tasks_max_age`: see resolve_task's `max_age`.
    """
    if public_id:
        existing = Run.objects.filter(project=project, public_id=public_id).first()
        if existing:
            return CreateResult(existing, duplicate=True)

    if isinstance(target, str) and target.startswith("workflow:"):
        from .orchestration.launch import create_workflow_run

        return create_workflow_run(
            project,
            target=target,
            input=input,
            name=name,
            public_id=public_id,
            parent_run=parent_run,
            timeout_seconds=timeout_seconds,
            trigger_kind=trigger_kind,
            trigger_id=trigger_id,
            created_by=created_by,
            metadata=metadata,
            start_mode=start_mode,
        )
    run, definition = build_task_run(
        project,
        target=target,
        input=input,
        config=config,
        name=name,
        public_id=public_id,
        parent_run=parent_run,
        batch_id=batch_id,
        timeout_seconds=timeout_seconds,
        backoff_limit=backoff_limit,
        trigger_kind=trigger_kind,
        trigger_id=trigger_id,
        schedule_id=schedule_id,
        created_by=created_by,
        metadata=metadata,
        start_mode=start_mode,
        runtime_target_kind=runtime_target_kind,
        tasks_max_age=tasks_max_age,
    )
    try:
        lifecycle.create(run, task_id=definition.id)
    except IntegrityError:
        # Two creates with one public_id raced; the other one won.
        existing = (
            Run.objects.filter(project=project, public_id=public_id).first() if public_id else None
        )
        if existing is None:
            raise
        return CreateResult(existing, duplicate=True)
    return CreateResult(run, duplicate=False, definition=definition)


def build_task_run(
    project: Project,
    *,
    target: str,
    input: dict | None = None,
    config: dict | None = None,
    name: str | None = None,
    public_id: str | None = None,
    parent_run: Run | None = None,
    batch_id: str | None = None,
    timeout_seconds: int | None = None,
    backoff_limit: int | None = None,
    trigger_kind: str = Run.Trigger.MANUAL,
    trigger_id: str | None = None,
    schedule_id: str | None = None,
    created_by: str | None = None,
    metadata: dict | None = None,
    start_mode: str | None = None,
    runtime_target_kind: str | None = None,
    definition: TaskDefinition | None = None,
    tasks_max_age: float = 0.0,
) -> tuple[Run, TaskDefinition]:
    """Validate a task run and build it, with its defaults filled in, without saving it.

    The one place that knows a task run's defaults: create_run saves what this builds; the
    scheduler's burst path and a workflow's next steps save many at once (lifecycle.create_many).
    Tasks only: a workflow target goes through create_run. `definition`: the target's, if the
    caller found it already; `tasks_max_age`: see resolve_task's `max_age`. RunError when the
    target or a field is not acceptable."""
    if definition is None or definition.target != target:
        definition = resolve_task(target, max_age=tasks_max_age)
    input = {} if input is None else input
    config = {} if config is None else config
    problems: list[FieldError] = []
    if not isinstance(input, dict):
        problems.append(FieldError("input", "must be a JSON object", "type"))
    if not isinstance(config, dict):
        problems.append(FieldError("config", "must be a JSON object", "type"))
    problems += _check_limit("timeout_seconds", timeout_seconds, 1, MAX_TIMEOUT_SECONDS)
    problems += _check_limit("backoff_limit", backoff_limit, 0, MAX_BACKOFF_LIMIT)
    for field_name, value in (("input", input), ("config", config)):
        problem = json_problem(value)
        if problem:
            problems.append(FieldError(field_name, problem, "storable"))
    if isinstance(input, dict):
        input = apply_defaults(definition.input_schema, input)
        problems += schema_errors(definition.input_schema, input)
    if problems:
        raise InvalidInput("; ".join(str(p) for p in problems), errors=problems)

    now = timezone.now()
    run = Run(
        project=project,
        kind=Run.Kind.TASK,
        target=definition.target,
        name=name or definition.name,
        input=input,
        config=config,
        public_id=public_id or None,
        parent_run=parent_run,
        root_run=(parent_run.root_run or parent_run) if parent_run else None,
        batch_id=batch_id,
        timeout_seconds=timeout_seconds
        or definition.timeout_seconds
        or settings.STUDIO_DEFAULT_TIMEOUT_SECONDS,
        backoff_limit=backoff_limit
        if backoff_limit is not None
        else (
            definition.backoff_limit
            if definition.backoff_limit is not None
            else settings.STUDIO_DEFAULT_BACKOFF_LIMIT
        ),
        trigger_kind=trigger_kind,
        trigger_id=trigger_id,
        schedule_id=schedule_id,
        created_by=created_by,
        metadata=metadata or {},
        start_mode=start_mode,
        runtime_target_kind=runtime_target_kind,
        created_at=now,
        enqueued_at=now,
    )
    return run, definition


def cancel_run(run: Run, *, reason: str = "cancelled by user") -> tuple[bool, Run]:
    """Stop a run. Returns (True, run) if cancellation happened or is under way, (False, run)
    if the run had already finished. A workflow run's cascade is its orchestrator's."""
    result = lifecycle.cancel(run, reason)
    if result.run.kind == Run.Kind.WORKFLOW:
        from .orchestration.queue import enqueue_advance

        enqueue_advance(result.run.pk)
    return result.accepted, result.run


def rerun(
    run: Run,
    *,
    created_by: str | None = None,
    trigger_kind: str = Run.Trigger.MANUAL,
    from_failed: bool = False,
) -> CreateResult:
    """A new run of the same target with the same input and config. A workflow run may re-run
    from its failed step: steps that completed with the same target and input are reused."""
    if run.kind == Run.Kind.WORKFLOW:
        from .orchestration.actions import rerun_workflow

        return rerun_workflow(
            run, from_failed=from_failed, created_by=created_by, trigger_kind=trigger_kind
        )
    if from_failed:
        raise RunError(
            "only a workflow run can re-run from its failed step",
            errors=[FieldError("from", "only for workflow runs", "enum")],
        )
    return create_run(
        run.project,
        target=run.target,
        input=run.input,
        config=run.config,
        name=run.name,
        timeout_seconds=run.timeout_seconds,
        backoff_limit=run.backoff_limit,
        trigger_kind=trigger_kind,
        created_by=created_by,
        metadata={"rerun_of": run.pk},
    )
