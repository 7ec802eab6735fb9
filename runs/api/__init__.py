"""The REST API's runs router (mounted on the NinjaAPI in studio/api.py).

Every view sees `request.auth`, the caller's ApiToken. Its project is the only one that exists as
far as the caller can tell: another project's run or project answers 404, as an unknown one does.
Writes go through runs.service, the one path that creates and cancels runs.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpResponse
from ninja import Body, Query, Router, Status
from ninja.errors import HttpError
from ninja.responses import NinjaJSONEncoder

from .. import service
from ..definitions import discover
from ..models import ApiToken, Project, Run, RunEvent, is_run_id
from ..models.paging import InvalidCursor, event_cursor, page_of_runs, parse_event_cursor
from . import lookups
from .schemas import (
    SUMMARY_OMITS,
    AcceptedOut,
    CancelOut,
    CreateRunIn,
    CreateWorkflowRun,
    ErrorOut,
    EventListQuery,
    EventPage,
    ProjectOut,
    RerunIn,
    RunFilters,
    RunListQuery,
    RunOut,
    RunPage,
    TaskList,
    TaskOut,
    event_to_wire,
    run_to_wire,
    task_to_wire,
)

router = Router(tags=["runs"])

# A create may go by the tasks directory as it was seen this long ago, rather than look at every
# task file again (stat each, walk each folder) for each of hundreds of creates a second: an
# edited task file is seen by the API's creates within this bound (a new task at once: one that
# is not found is looked for again). The worker runs whatever the file holds when the run starts.
# Task creates only: a workflow create still reads the workflow files each time.
TASKS_SEEN_WITHIN_SECONDS = 0.25

READ_ERRORS = {frozenset({401, 404, 422}): ErrorOut}
WRITE_ERRORS = {frozenset({400, 401, 403, 404, 413, 422}): ErrorOut}


class ApiError(HttpError):
    """An answer other than 2xx, with a machine-readable code and optional detail."""

    def __init__(self, status: int, message: str, *, code: str, detail: Any = None):
        super().__init__(status, message)
        self.code = code
        self.detail = detail


def _field(field: str, message: str, rule: str) -> list[dict]:
    return [{"field": field, "message": message, "rule": rule}]


# --- Lookups, scoped to the token's project ---------------------------------------------------


def _project(request, ref: str) -> Project:
    """The token's project if `ref` names it (by slug or id); 404 for any other project."""
    project = request.auth.project
    if ref == project.slug:
        return project
    try:
        if uuid.UUID(ref) == project.id:
            return project
    except ValueError:
        pass
    raise ApiError(404, f"no project {ref!r}", code="not_found")


def _run(request, run_id: str) -> Run:
    # A malformed id cannot name a run; answer without asking the database.
    run = lookups.run_by_id(run_id) if is_run_id(run_id) else None
    if run is None or run.project_id != request.auth.project_id:
        raise ApiError(404, f"no run {run_id!r}", code="not_found")
    run.project = request.auth.project  # the filter says it is the token's: no second read
    return run


def wire_response(data: Any, status: int = 200) -> HttpResponse:
    """`data` as ninja would answer it after validating it against the route's response schema.

    The `*_to_wire` functions already build exactly the declared shape (every key, in order),
    so the pydantic round trip (a run has 33 fields; clients poll) is left out and the dict is
    rendered with ninja's own encoder: the same bytes (tests/api/test_wire_render.py). The
    schemas stay declared on the routes for the OpenAPI document."""
    return HttpResponse(
        json.dumps(data, cls=NinjaJSONEncoder),
        status=status,
        content_type="application/json; charset=utf-8",
    )


def _created_by(token: ApiToken) -> str:
    return f"token:{token.name}"


def _invalid_cursor() -> ApiError:
    return ApiError(
        422,
        "cursor is not one this API handed out",
        code="invalid_cursor",
        detail=_field("cursor", "is not a cursor from page_info", "cursor"),
    )


# --- Runs -------------------------------------------------------------------------------------


@router.post(
    "/runs",
    response={202: AcceptedOut, **WRITE_ERRORS},
    exclude_unset=True,
    summary="Create a run",
)
def create_run(request, payload: Body[CreateRunIn]):
    """Start a task run. The same `public_id` again returns the first run with `duplicate: true`."""
    token: ApiToken = request.auth
    if payload.owner.id != token.project_id:
        raise ApiError(404, f"no project {str(payload.owner.id)!r}", code="not_found")
    spec = payload.request
    if isinstance(payload, CreateWorkflowRun):
        target = spec.target or f"workflow:{spec.workflow_id}"
        if target != f"workflow:{spec.workflow_id}":
            raise ApiError(
                422,
                f"request.target {spec.target!r} does not name workflow {spec.workflow_id!r}",
                code="invalid_input",
                detail=_field("request.target", f"must be workflow:{spec.workflow_id}", "match"),
            )
        options: dict = {}
    else:
        target = spec.target
        if target.startswith("workflow:"):
            raise ApiError(
                422,
                'a task run\'s target is task:<id>; start a workflow with kind "workflow"',
                code="invalid_input",
                detail=_field("request.target", "must look like task:<id>", "pattern"),
            )
        options = {
            "config": spec.config,
            "name": spec.name,
            "batch_id": spec.batch_id,
            "timeout_seconds": spec.timeout_seconds,
            "backoff_limit": spec.backoff_limit,
        }
    parent = None
    if payload.parent_run_id:
        parent = Run.objects.filter(pk=payload.parent_run_id, project_id=token.project_id).first()
        if parent is None:
            raise ApiError(
                422,
                f"parent_run_id: no run {payload.parent_run_id!r} in this project",
                code="invalid_input",
                detail=_field("parent_run_id", "no such run in this project", "exists"),
            )
    _check_runtime_target(spec)
    try:
        result = service.create_run(
            token.project,
            target=target,
            input=spec.input,
            public_id=payload.public_id,
            parent_run=parent,
            trigger_kind=Run.Trigger.API,
            created_by=_created_by(token),
            start_mode=spec.start_mode,
            runtime_target_kind=spec.runtime_target_kind,
            tasks_max_age=TASKS_SEEN_WITHIN_SECONDS,
            **options,
        )
    except service.RunError as exc:
        raise _from_run_error(exc, prefix="request.") from None
    body: dict = {"accepted": True, "run": run_to_wire(result.run)}
    if result.duplicate:
        body = {"accepted": True, "duplicate": True, "run": body["run"]}  # the schema's order
    return wire_response(body, 202)


def _check_runtime_target(spec) -> None:
    """Studio has one runtime: Veryfront's `main_branch`. Refuse environments and branches."""
    unsupported = []
    if spec.runtime_target_kind not in (None, "main_branch"):
        unsupported.append(
            ("runtime_target_kind", "Studio runs only on main_branch (or leave it null)")
        )
    for name in ("runtime_target_environment_id", "runtime_target_branch_id"):
        if getattr(spec, name) is not None:
            unsupported.append((name, "must be null: Studio has no environments or branches"))
    if unsupported:
        fields = ", ".join(f"request.{name}" for name, _ in unsupported)
        raise ApiError(
            422,
            f"{fields}: Studio has a single runtime target, main_branch",
            code="runtime_target_unsupported",
            detail=[
                {"field": f"request.{name}", "message": message, "rule": "runtime_target"}
                for name, message in unsupported
            ],
        )


def _from_run_error(exc: service.RunError, *, prefix: str = "") -> ApiError:
    detail = [{**e.as_dict(), "field": prefix + e.field} for e in exc.errors]
    return ApiError(exc.status, exc.message, code=exc.code, detail=detail or None)


@router.get("/runs/{run_id}", response={200: RunOut, **READ_ERRORS}, summary="Get a run")
def get_run(request, run_id: str):
    run = lookups.run_fields_by_id(run_id) if is_run_id(run_id) else None
    if run is None or run.project_id != request.auth.project_id:
        raise ApiError(404, f"no run {run_id!r}", code="not_found")
    return wire_response(run_to_wire(run))


@router.get(
    "/runs/{run_id}/events",
    response={200: EventPage, **READ_ERRORS},
    summary="List a run's events, oldest first",
)
def list_events(request, run_id: str, query: Query[EventListQuery]):
    """Events after `after_event_id` (or after the position a `cursor` names), oldest first."""
    after = query.after_event_id
    if query.cursor is not None:
        try:
            after = parse_event_cursor(query.cursor)
        except InvalidCursor:
            raise _invalid_cursor() from None
    after = after or 0  # event ids start at 1
    # Clients poll with the last id they have, and mostly nothing is newer: one statement says
    # whether the run is the caller's and whether there is anything to read.
    found = lookups.run_project_and_news(run_id, after) if is_run_id(run_id) else None
    if found is None or found[0] != request.auth.project_id:
        raise ApiError(404, f"no run {run_id!r}", code="not_found")
    rows = []
    if found[1]:
        events = RunEvent.objects.filter(run_id=run_id, id__gt=after).order_by("id")
        rows = list(events[: query.limit + 1])
    page = rows[: query.limit]
    page_info = {
        "self": query.cursor,
        "first": None,
        "next": event_cursor(page[-1].id) if len(rows) > query.limit else None,
        "prev": None,
    }
    return wire_response({"data": [event_to_wire(e) for e in page], "page_info": page_info})


@router.post(
    "/runs/{run_id}/cancel",
    response={200: CancelOut, **WRITE_ERRORS},
    summary="Cancel a run",
)
def cancel_run(request, run_id: str):
    """`cancelled` is false when the run had already finished; nothing changes then."""
    # The run's page and its run.cancelled event say who stopped it: this token, by name.
    cancelled, run = service.cancel_run(
        _run(request, run_id), reason=f"cancelled through the API by {_created_by(request.auth)}"
    )
    return {"cancelled": cancelled, "run": run_to_wire(run)}


@router.post(
    "/runs/{run_id}/rerun",
    response={202: AcceptedOut, **WRITE_ERRORS},
    exclude_unset=True,
    summary="Run again with the same target, input and config",
)
def rerun(request, run_id: str, payload: Body[RerunIn | None] = None):
    """`{"from": "failed"}` (workflow runs): reuse the steps that completed, run the rest."""
    run = _run(request, run_id)
    try:
        result = service.rerun(
            run,
            created_by=_created_by(request.auth),
            trigger_kind=Run.Trigger.API,
            from_failed=payload is not None and payload.from_ == "failed",
        )
    except service.RunError as exc:
        # The task may have gone, or its input_schema changed since the first run.
        raise _from_run_error(exc) from None
    return Status(202, {"accepted": True, "run": run_to_wire(result.run)})


# --- Projects and their tasks -----------------------------------------------------------------


@router.get("/projects/{ref}", response={200: ProjectOut, **READ_ERRORS}, summary="Get a project")
def get_project(request, ref: str):
    project = _project(request, ref)
    return {"id": str(project.id), "slug": project.slug, "name": project.name}


@router.get(
    "/projects/{ref}/runs",
    response={200: RunPage, **READ_ERRORS},
    summary="List a project's runs, newest first",
)
def list_runs(request, ref: str, query: Query[RunListQuery], filters: Query[RunFilters]):
    project = _project(request, ref)
    summary = query.fields == "summary"
    runs = Run.objects.owned_by(project).matching(**filters.dict())
    if summary:
        runs = runs.defer(*SUMMARY_OMITS)
    try:
        page, page_info = page_of_runs(runs, query.cursor, query.limit)
    except InvalidCursor:
        raise _invalid_cursor() from None
    return {"data": [run_to_wire(r, summary=summary) for r in page], "page_info": page_info}


@router.get("/projects/{ref}/tasks", response={200: TaskList, **READ_ERRORS}, summary="List tasks")
def list_tasks(request, ref: str):
    _project(request, ref)
    tasks = discover().tasks
    return {"data": [task_to_wire(tasks[task_id]) for task_id in sorted(tasks)]}


@router.get(
    "/projects/{ref}/tasks/{task_id}", response={200: TaskOut, **READ_ERRORS}, summary="Get a task"
)
def get_task(request, ref: str, task_id: str):
    _project(request, ref)
    definition = discover().get(task_id)
    if definition is None:
        raise ApiError(404, f"no task {task_id!r}", code="not_found")
    return task_to_wire(definition)
