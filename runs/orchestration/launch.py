"""Creating a workflow run: validate the input, store the run with its graph and one row per
step, and enqueue its first advance after commit."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import lifecycle
from ..models import Project, Run, WorkflowStep
from ..models.workflows import WorkflowGraph
from ..service import CreateResult, InvalidInput, RunError, TargetNotFound, _check_limit
from ..validation import (
    MAX_TIMEOUT_SECONDS,
    FieldError,
    apply_defaults,
    json_problem,
    schema_errors,
)
from .discovery import WorkflowDefinition, discover_workflows
from .queue import enqueue_advance


def resolve_workflow(target: str) -> WorkflowDefinition:
    workflow_id = target.removeprefix("workflow:")
    found = discover_workflows()
    definition = found.get(workflow_id)
    if definition is None:
        known = ", ".join(sorted(found.workflows)) or "none"
        raise TargetNotFound(
            f"no workflow with id {workflow_id!r} (available: {known})",
            errors=[FieldError("target", f"no workflow with id {workflow_id!r}", "exists")],
        )
    return definition


def depth_of(run: Run | None) -> int:
    """How many workflow runs enclose `run` (a top-level workflow run is depth 1)."""
    if run is None:
        return 0
    return int((run.metadata or {}).get("workflow_depth", 1))


def create_workflow_run(
    project: Project,
    *,
    target: str,
    input: dict | None = None,
    name: str | None = None,
    public_id: str | None = None,
    parent_run: Run | None = None,
    timeout_seconds: int | None = None,
    trigger_kind: str = Run.Trigger.MANUAL,
    trigger_id: str | None = None,
    created_by: str | None = None,
    metadata: dict | None = None,
    graph: dict | None = None,
    start_mode: str | None = None,
) -> CreateResult:
    """`graph` (a re-run's) replaces the definition's current graph when given."""
    if public_id:
        existing = Run.objects.filter(project=project, public_id=public_id).first()
        if existing:
            return CreateResult(existing, duplicate=True)
    definition = resolve_workflow(target)
    input = {} if input is None else input
    problems: list[FieldError] = []
    if not isinstance(input, dict):
        problems.append(FieldError("input", "must be a JSON object", "type"))
    else:
        problem = json_problem(input)
        if problem:
            problems.append(FieldError("input", problem, "storable"))
    problems += _check_limit("timeout_seconds", timeout_seconds, 1, MAX_TIMEOUT_SECONDS)
    if isinstance(input, dict) and not problems:
        input = apply_defaults(definition.input_schema, input)
        problems += schema_errors(definition.input_schema, input)
    if problems:
        raise InvalidInput("; ".join(str(p) for p in problems), errors=problems)
    depth = depth_of(parent_run) + 1 if parent_run is not None else 1
    max_depth = settings.STUDIO_WORKFLOW_MAX_DEPTH
    if depth > max_depth:
        raise RunError(
            f"workflows nest at most {max_depth} deep; this would be level {depth}",
            errors=[FieldError("target", f"nesting deeper than {max_depth}", "maximum")],
            code="workflow_depth",
        )
    # What the orchestrator needs of the definition travels with the graph.
    graph = {
        **(graph or definition.graph),
        "concurrency_limit": definition.concurrency_limit,
        "output_schema": definition.output_schema,
    }
    now = timezone.now()
    run = Run(
        project=project,
        kind=Run.Kind.WORKFLOW,
        target=definition.target,
        workflow_id=definition.id,
        name=name or definition.name,
        input=input,
        config={},
        public_id=public_id or None,
        parent_run=parent_run,
        root_run=(parent_run.root_run or parent_run) if parent_run else None,
        timeout_seconds=timeout_seconds
        or definition.timeout_seconds
        or settings.STUDIO_DEFAULT_WORKFLOW_TIMEOUT_SECONDS,
        backoff_limit=0,
        start_mode=start_mode,
        trigger_kind=trigger_kind,
        trigger_id=trigger_id,
        created_by=created_by,
        metadata={**(metadata or {}), "workflow_depth": depth},
        created_at=now,
        enqueued_at=now,
    )
    try:
        with transaction.atomic():
            lifecycle.create(run, enqueue_run=False)
            WorkflowGraph.objects.create(run=run, graph=graph)
            WorkflowStep.objects.bulk_create(
                WorkflowStep(
                    run=run,
                    step_id=spec["id"],
                    position=i,
                    kind=spec["kind"],
                    name=spec["name"],
                    target=spec.get("target"),
                    depends_on=spec["depends_on"],
                )
                for i, spec in enumerate(graph["steps"])
            )
            enqueue_advance(run.pk)
    except IntegrityError:
        existing = (
            Run.objects.filter(project=project, public_id=public_id).first() if public_id else None
        )
        if existing is None:
            raise
        return CreateResult(existing, duplicate=True)
    return CreateResult(run, duplicate=False)
