"""Wire schemas of the REST API: the Veryfront Runs format, spelled out field by field.

Requests refuse unknown fields and take no type coercion ("5" is not an integer). Responses are
built by the `*_to_wire` functions, which put every key in, null when there is no value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.utils import timezone
from ninja import Field, Schema
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from ..models import Run, RunEvent
from ..models.paging import MAX_EVENT_ID
from ..validation import MAX_BACKOFF_LIMIT, MAX_TIMEOUT_SECONDS, json_problem, storable_text


def _storable_json(value: Any) -> Any:
    problem = json_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _integral(value: Any) -> Any:
    # JSON has one number type: 30.0 is the integer 30 (as in JSON Schema), "30" is no number.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[StrictInt, BeforeValidator(_integral)]

# Column sizes of the Run model; longer strings are refused up front, not by the database.
Text255 = Annotated[StrictStr, Field(min_length=1, max_length=255), AfterValidator(storable_text)]
QueryText = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(storable_text)]
JsonObject = dict[str, Any]
StoredJsonObject = Annotated[JsonObject, AfterValidator(_storable_json)]

# PositiveIntegerField's ceiling on every database Django supports.

# Run.start_mode is a CharField(max_length=32): the wire refuses what the column cannot hold.
StartMode = Annotated[
    StrictStr,
    Field(min_length=1, max_length=Run._meta.get_field("start_mode").max_length),
    AfterValidator(storable_text),
]
# Studio has one runtime: of Veryfront's runtime targets (main_branch, environment,
# preview_branch) it only ever runs on, and echoes, `main_branch`. Requests may name any target;
# the API refuses the ones Studio lacks with `runtime_target_unsupported` (not a schema error, so
# that a valid Veryfront value is not called malformed).
RuntimeTargetKind = Literal["main_branch"]

RunStatusName = Literal["pending", "running", "waiting", "completed", "failed", "cancelled"]
TriggerKind = Literal["manual", "schedule", "webhook", "api"]
RunKind = Literal["task", "workflow"]


class StrictSchema(BaseModel):
    """A request body: unknown fields refused.

    A plain pydantic model rather than ninja's Schema, whose extras (reading Django objects'
    attributes, resolvers) have nothing to do for a parsed JSON body, and which, for a model
    that forbids extra fields, validates each object twice, nested ones at every level: a
    create's body was validated five times over. `from_attributes` as ninja's Schema has it:
    it words the error for a value that is no object ("a valid dictionary or object to
    extract fields from", rule `model_attributes_type`), which the API answers with."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


# --- Requests ---------------------------------------------------------------------------------


class OwnerIn(StrictSchema):
    kind: Literal["project"]
    id: UUID = Field(description="The project's UUID; it must be the token's project.")


class RuntimeTargetFields(StrictSchema):
    runtime_target_kind: Text255 | None = None
    runtime_target_environment_id: Text255 | None = None
    runtime_target_branch_id: Text255 | None = None


class TaskRequest(RuntimeTargetFields):
    name: Text255 | None = None
    target: Text255 = Field(description="`task:<id>`, e.g. `task:sync-data`.")
    config: StoredJsonObject | None = None
    input: StoredJsonObject | None = Field(
        None, description="Validated against the task's input_schema."
    )
    batch_id: Text255 | None = None
    timeout_seconds: Annotated[JsonInt, Field(ge=1, le=MAX_TIMEOUT_SECONDS)] | None = None
    backoff_limit: Annotated[JsonInt, Field(ge=0, le=MAX_BACKOFF_LIMIT)] | None = None
    start_mode: StartMode | None = None


class WorkflowRequest(RuntimeTargetFields):
    workflow_id: Text255
    target: Text255 | None = None
    input: StoredJsonObject | None = None
    start_mode: StartMode | None = None


class _CreateRunBase(StrictSchema):
    owner: OwnerIn
    public_id: Text255 | None = Field(
        None, description="Idempotency key: a second create with it returns the first run."
    )
    parent_run_id: Text255 | None = None


class CreateTaskRun(_CreateRunBase):
    kind: Literal["task"]
    request: TaskRequest


class CreateWorkflowRun(_CreateRunBase):
    kind: Literal["workflow"]
    request: WorkflowRequest


CreateRunIn = Annotated[CreateTaskRun | CreateWorkflowRun, Field(discriminator="kind")]


class RerunIn(StrictSchema):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: Literal["failed"] | None = Field(
        None, alias="from", description='"failed": reuse the steps a workflow run completed.'
    )


# --- Query parameters -------------------------------------------------------------------------


class EventListQuery(Schema):
    after_event_id: int | None = Field(
        None, ge=0, le=MAX_EVENT_ID, description="Only later events."
    )
    cursor: QueryText | None = Field(None, description="`page_info.next` of the previous page.")
    limit: int = Field(100, ge=1, le=1000)


class RunListQuery(Schema):
    cursor: QueryText | None = Field(None, description="`page_info.next` or `prev` of a page.")
    limit: int = Field(50, ge=1, le=200)
    fields: Literal["full", "summary"] = Field(
        "full",
        description="`summary` sends `logs`, `input`, `output` and `config` as null (the keys "
        "stay) so that a page of chatty runs stays small; `full` (the default) sends all.",
    )


# The columns a summary leaves out: not read from the database, sent as null.
SUMMARY_OMITS = ("logs", "input", "output", "config")


def _iso_8601(value: Any) -> Any:
    # pydantic would also read "1700000000" as a Unix time; the API speaks ISO 8601 only.
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z") from None
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_8601)]


class RunFilters(Schema):
    """The list's filters, validated; applied by `Run.objects.matching(**filters.dict())`."""

    status: RunStatusName | None = None
    target: QueryText | None = Field(None, description="e.g. `task:sync-data`")
    kind: RunKind | None = None
    trigger_kind: TriggerKind | None = None
    parent_run_id: QueryText | None = None
    root_only: bool | None = Field(None, description="Only runs without a parent run.")
    created_after: IsoDateTime | None = Field(None, description="ISO 8601; naive means UTC.")
    created_before: IsoDateTime | None = Field(None, description="ISO 8601; naive means UTC.")

    @field_validator("created_after", "created_before")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if timezone.is_naive(value):
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is outside the range of dates this API stores") from None


# --- Responses --------------------------------------------------------------------------------


class OwnerOut(Schema):
    kind: Literal["project"]
    id: str


FALLBACK_ERROR_CODE = "error"


class ErrorInfo(Schema):
    message: str
    code: str = Field(min_length=1)
    detail: Any


class RunOut(Schema):
    run_id: str
    kind: RunKind
    status: RunStatusName
    owner: OwnerOut
    parent_run_id: str | None
    root_run_id: str
    waiting_reason: str | None
    metadata: JsonObject | None
    target: str | None
    workflow_id: str | None
    schedule_id: str | None
    batch_id: str | None
    runtime_target_kind: RuntimeTargetKind | None
    runtime_target_environment_id: str | None
    runtime_target_branch_id: str | None
    input: Any
    config: Any
    output: Any
    error: ErrorInfo | None
    logs: str | None
    artifacts: list[Any]
    duration_ms: int | None
    exit_code: int | None
    start_mode: str | None
    timeout_seconds: int | None
    backoff_limit: int | None
    trigger_kind: TriggerKind | None
    trigger_id: str | None
    created_by: str | None
    updated_at: datetime
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class AcceptedOut(Schema):
    accepted: StrictBool
    duplicate: StrictBool | None = Field(
        None, description="Present, and true, only for a duplicate."
    )
    run: RunOut


class CancelOut(Schema):
    cancelled: bool
    run: RunOut


class PageInfo(Schema):
    self: str | None = Field(None, description="The cursor of this page (null for the first).")
    first: None = None
    next: str | None = Field(
        None, description="Pass as `cursor=` for older items; null at the end."
    )
    prev: str | None = Field(
        None, description="Pass as `cursor=` for newer items; null at the start."
    )


class RunPage(Schema):
    data: list[RunOut]
    page_info: PageInfo


class EventOut(Schema):
    event_id: int
    event_type: str
    payload: Any
    created_at: datetime


class EventPage(Schema):
    data: list[EventOut]
    page_info: PageInfo


class ProjectOut(Schema):
    id: str
    slug: str
    name: str


class TaskOut(Schema):
    id: str
    name: str
    description: str
    schedulable: bool
    input_schema: JsonObject | None
    output_schema: JsonObject | None


class TaskList(Schema):
    data: list[TaskOut]


class FieldErrorOut(Schema):
    field: str
    message: str
    rule: str


class ErrorBody(Schema):
    message: str
    code: str
    detail: Any = Field(None, description="For 422: a list of {field, message, rule}.")


class ErrorOut(Schema):
    error: ErrorBody


# --- Model -> wire ----------------------------------------------------------------------------


def _error_to_wire(error: Any) -> dict | None:
    # The Veryfront SDK reads `code` as absent or a string (never null) and `message` as a
    # string. Stored errors all have both (one constructor, plus migration 0003 for old rows);
    # this guards the wire against anything else that slipped in.
    if not error:
        return None
    if not isinstance(error, dict):
        return {"message": str(error), "code": FALLBACK_ERROR_CODE, "detail": None}
    message, code = error.get("message"), error.get("code")
    return {
        "message": message
        if isinstance(message, str)
        else ("" if message is None else str(message)),
        "code": code if isinstance(code, str) and code else FALLBACK_ERROR_CODE,
        "detail": error.get("detail"),
    }


# The run's columns that run_to_wire reads: a read that only answers with the wire shape selects
# these and no more (runs.api.lookups); the others (the worker's bookkeeping) stay unread.
RUN_WIRE_FIELDS = (
    "id",
    "kind",
    "status",
    "project_id",
    "parent_run_id",
    "root_run_id",
    "waiting_reason",
    "metadata",
    "target",
    "workflow_id",
    "schedule_id",
    "batch_id",
    "runtime_target_kind",
    "input",
    "config",
    "output",
    "error",
    "logs",
    "artifacts",
    "duration_ms",
    "exit_code",
    "start_mode",
    "timeout_seconds",
    "backoff_limit",
    "trigger_kind",
    "trigger_id",
    "created_by",
    "updated_at",
    "created_at",
    "started_at",
    "completed_at",
)


def run_to_wire(run: Run, *, summary: bool = False) -> dict:
    """A Run as the wire sees it: every key present, null where there is no value.

    `summary` leaves the big columns (SUMMARY_OMITS) null, without reading them from `run`, so
    that a queryset may defer them."""
    return {
        "run_id": run.id,
        "kind": run.kind,
        "status": run.status,
        "owner": {"kind": "project", "id": str(run.project_id)},
        "parent_run_id": run.parent_run_id,
        "root_run_id": run.root_run_id or run.id,
        "waiting_reason": run.waiting_reason,
        "metadata": run.metadata,
        "target": run.target or None,
        "workflow_id": run.workflow_id,
        "schedule_id": run.schedule_id,
        "batch_id": run.batch_id,
        "runtime_target_kind": run.runtime_target_kind,
        # Studio runs everything on its own workers: no environments or preview branches.
        "runtime_target_environment_id": None,
        "runtime_target_branch_id": None,
        "input": None if summary else run.input,
        "config": None if summary else run.config,
        "output": None if summary else run.output,
        "error": _error_to_wire(run.error),
        "logs": None if summary else (run.logs or None),
        "artifacts": run.artifacts or [],
        "duration_ms": run.duration_ms,
        "exit_code": run.exit_code,
        "start_mode": run.start_mode,
        "timeout_seconds": run.timeout_seconds,
        "backoff_limit": run.backoff_limit,
        "trigger_kind": run.trigger_kind,
        "trigger_id": run.trigger_id,
        "created_by": run.created_by or None,
        "updated_at": run.updated_at,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "completed_at": run.completed_at,
    }


def event_to_wire(event: RunEvent) -> dict:
    return {
        "event_id": event.id,
        "event_type": event.event_type,
        "payload": event.payload,
        "created_at": event.created_at,
    }


def task_to_wire(definition) -> dict:
    return {
        "id": definition.id,
        "name": definition.name,
        "description": definition.description,
        "schedulable": definition.schedulable,
        "input_schema": definition.input_schema,
        "output_schema": definition.output_schema,
    }
