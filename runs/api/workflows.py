"""The REST API's workflow endpoints: definitions, a run's steps and approvals, and signals.

Same auth and error shape as the runs router: a token sees only its project, another project's
run answers 404, and writes need a read-write token (the API's operator).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Body, Router, Schema, Status
from pydantic import AfterValidator, ConfigDict, Field, StrictBool, StrictStr

from .. import service
from ..models import Run, WorkflowApproval
from ..orchestration import actions
from ..orchestration.discovery import WorkflowDefinition, discover_workflows
from ..validation import storable_text
from ..workflows.graph import nodes_and_edges
from . import READ_ERRORS, ApiError, _created_by, _from_run_error, _project, _run
from .schemas import ErrorOut, JsonObject, Text255, run_to_wire

Comment = Annotated[StrictStr, Field(max_length=10_000), AfterValidator(storable_text)]

router = Router(tags=["workflows"])

WRITE_ERRORS = {frozenset({400, 401, 403, 404, 409, 413, 422}): ErrorOut}


class GraphNode(Schema):
    id: str
    kind: str
    target: str | None
    name: str


class GraphEdge(Schema):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str


class Graph(Schema):
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class WorkflowOut(Schema):
    id: str
    name: str
    description: str
    schedulable: bool
    input_schema: JsonObject | None
    output_schema: JsonObject | None
    graph: Graph


class WorkflowList(Schema):
    data: list[WorkflowOut]


class StepOut(Schema):
    step_id: str
    kind: str
    name: str
    status: str
    depends_on: list[str]
    child_run_ids: list[str]
    started_at: datetime | None
    completed_at: datetime | None
    output: Any
    error: Any
    reused_from_run_id: str | None


class StepList(Schema):
    data: list[StepOut]


class ApprovalOut(Schema):
    step_id: str
    message: str
    status: Literal["pending", "approved", "rejected", "expired"]
    requested_at: datetime
    expires_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None


class ApprovalList(Schema):
    data: list[ApprovalOut]


class DecisionIn(Schema):
    model_config = ConfigDict(extra="forbid")
    approved: StrictBool
    comment: Comment | None = None


class DecisionOut(Schema):
    approval: ApprovalOut
    run: dict


class SignalIn(Schema):
    model_config = ConfigDict(extra="forbid")
    event: Text255
    payload: Any = None


class SignalOut(Schema):
    accepted: bool


def workflow_to_wire(definition: WorkflowDefinition) -> dict:
    return {
        "id": definition.id,
        "name": definition.name,
        "description": definition.description,
        "schedulable": definition.schedulable,
        "input_schema": definition.input_schema,
        "output_schema": definition.output_schema,
        "graph": nodes_and_edges(definition.graph),
    }


def step_to_wire(step) -> dict:
    return {
        "step_id": step.step_id,
        "kind": step.kind,
        "name": step.name,
        "status": step.status,
        "depends_on": step.depends_on,
        "child_run_ids": step.child_run_ids,
        "started_at": step.started_at,
        "completed_at": step.completed_at,
        "output": step.output,
        "error": step.error,
        "reused_from_run_id": step.reused_from_run_id,
    }


def approval_to_wire(approval: WorkflowApproval) -> dict:
    return {
        "step_id": approval.step_id,
        "message": approval.message,
        "status": approval.status,
        "requested_at": approval.requested_at,
        "expires_at": approval.expires_at,
        "decided_by": approval.decided_by,
        "decided_at": approval.decided_at,
        "comment": approval.comment,
    }


def _workflow_run(request, run_id: str) -> Run:
    run = _run(request, run_id)
    if run.kind != Run.Kind.WORKFLOW:
        raise ApiError(
            409, f"{run.pk} is a {run.kind} run, not a workflow run", code="not_a_workflow"
        )
    return run


@router.get(
    "/projects/{ref}/workflows",
    response={200: WorkflowList, **READ_ERRORS},
    summary="List workflows",
    by_alias=True,
)
def list_workflows(request, ref: str):
    _project(request, ref)
    found = discover_workflows().workflows
    return {"data": [workflow_to_wire(found[wid]) for wid in sorted(found)]}


@router.get(
    "/projects/{ref}/workflows/{workflow_id}",
    response={200: WorkflowOut, **READ_ERRORS},
    summary="Get a workflow with its graph",
    by_alias=True,
)
def get_workflow(request, ref: str, workflow_id: str):
    _project(request, ref)
    definition = discover_workflows().get(workflow_id)
    if definition is None:
        raise ApiError(404, f"no workflow {workflow_id!r}", code="not_found")
    return workflow_to_wire(definition)


@router.get(
    "/runs/{run_id}/steps",
    response={200: StepList, **READ_ERRORS},
    summary="A workflow run's steps, in graph order",
)
def list_steps(request, run_id: str):
    run = _run(request, run_id)
    return {"data": [step_to_wire(s) for s in run.steps.order_by("position")]}


@router.get(
    "/runs/{run_id}/approvals",
    response={200: ApprovalList, **READ_ERRORS},
    summary="A workflow run's approvals",
)
def list_approvals(request, run_id: str):
    run = _run(request, run_id)
    return {"data": [approval_to_wire(a) for a in run.approvals.order_by("requested_at", "id")]}


@router.post(
    "/runs/{run_id}/approvals/{step_id}",
    response={200: DecisionOut, **WRITE_ERRORS},
    summary="Approve or reject a pending approval",
)
def decide(request, run_id: str, step_id: str, payload: Body[DecisionIn]):
    run = _workflow_run(request, run_id)
    try:
        approval = actions.decide_approval(
            run,
            step_id,
            approved=payload.approved,
            comment=payload.comment or "",
            by=_created_by(request.auth),
        )
    except service.RunError as exc:
        raise _from_run_error(exc) from None
    approval.refresh_from_db()
    run.refresh_from_db()
    return {"approval": approval_to_wire(approval), "run": run_to_wire(run)}


@router.post(
    "/runs/{run_id}/signal",
    response={202: SignalOut, **WRITE_ERRORS},
    summary="Send an event to a workflow run",
)
def signal(request, run_id: str, payload: Body[SignalIn]):
    run = _workflow_run(request, run_id)
    try:
        actions.send_signal(run, payload.event, payload.payload)
    except service.RunError as exc:
        raise _from_run_error(exc) from None
    return Status(202, {"accepted": True})
