"""Bulk actions over the API: cancel or re-run many runs in the background, and follow them.

POST /api/projects/{ref}/runs/cancel   {"run_ids": [...]} or {"filter": {...}}  -> 202
POST /api/projects/{ref}/runs/rerun    (the same)                                -> 202
GET  /api/projects/{ref}/operations/{operation_id}                               progress
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Body, Router, Schema, Status
from pydantic import ConfigDict, Field, StringConstraints, model_validator

from .. import operations
from ..models import Operation, Run
from . import READ_ERRORS, WRITE_ERRORS, ApiError, _created_by, _field, _project
from .schemas import RunFilters

router = Router(tags=["operations"])

MAX_IDS = 10_000
RunId = Annotated[str, StringConstraints(pattern=r"^run_[0-9a-f]{32}$")]


class BulkFilter(RunFilters):
    # A typo in a filter must not widen a bulk cancel to every run: unknown keys are refused.
    model_config = ConfigDict(extra="forbid")


class BulkIn(Schema):
    model_config = ConfigDict(extra="forbid")

    run_ids: list[RunId] | None = Field(None, min_length=1, max_length=MAX_IDS)
    filter: BulkFilter | None = Field(
        None, description="The runs list's filters; `{}` means every run of the project."
    )

    @model_validator(mode="after")
    def _one_of(self):
        if (self.run_ids is None) == (self.filter is None):
            raise ValueError("give either run_ids or filter, not both and not neither")
        return self


class OperationAccepted(Schema):
    operation_id: str


class OperationOut(Schema):
    operation_id: str
    kind: Literal["cancel", "rerun"]
    status: Literal["pending", "running", "completed"]
    total: int
    processed: int
    succeeded: int
    skipped: int
    failed: int
    result: dict[str, Any]
    created_by: str
    created_at: datetime
    finished_at: datetime | None


def operation_to_wire(operation: Operation) -> dict:
    return {
        "operation_id": str(operation.pk),
        "kind": operation.kind,
        "status": operation.state,
        "total": operation.total,
        "processed": operation.processed,
        "succeeded": operation.succeeded,
        "skipped": operation.skipped,
        "failed": operation.failed,
        "result": operation.result or {},
        "created_by": operation.created_by,
        "created_at": operation.created_at,
        "finished_at": operation.finished_at,
    }


def _start(request, ref: str, kind: str, payload: BulkIn):
    project = _project(request, ref)
    runs = None
    if payload.filter is not None:
        runs = Run.objects.owned_by(project).matching(**payload.filter.dict())
    try:
        operation = operations.start(
            project,
            kind,
            run_ids=payload.run_ids,
            runs=runs,
            filter=payload.filter.model_dump(mode="json", exclude_none=True)
            if payload.filter is not None
            else None,
            created_by=_created_by(request.auth),
        )
    except operations.TooManyRuns as exc:
        raise ApiError(
            422,
            f"{exc}: narrow the filter",
            code="too_many_runs",
            detail=_field("filter", str(exc), "max_runs"),
        ) from None
    return Status(202, {"operation_id": str(operation.pk)})


@router.post(
    "/projects/{ref}/runs/cancel",
    response={202: OperationAccepted, **WRITE_ERRORS},
    summary="Cancel many runs in the background",
)
def bulk_cancel(request, ref: str, payload: Body[BulkIn]):
    """Unfinished runs among those named are cancelled; follow the operation for progress."""
    return _start(request, ref, Operation.Kind.CANCEL, payload)


@router.post(
    "/projects/{ref}/runs/rerun",
    response={202: OperationAccepted, **WRITE_ERRORS},
    summary="Re-run many runs in the background",
)
def bulk_rerun(request, ref: str, payload: Body[BulkIn]):
    """Each run named is run again with its target, input and config; new ids in the result."""
    return _start(request, ref, Operation.Kind.RERUN, payload)


@router.get(
    "/projects/{ref}/operations/{operation_id}",
    response={200: OperationOut, **READ_ERRORS},
    summary="Progress and result of a bulk operation",
)
def get_operation(request, ref: str, operation_id: str):
    project = _project(request, ref)
    try:
        pk = uuid.UUID(operation_id)
    except ValueError:
        pk = None
    operation = Operation.objects.filter(pk=pk, project=project).first() if pk else None
    if operation is None:
        raise ApiError(404, f"no operation {operation_id!r}", code="not_found")
    return operation_to_wire(operation)
