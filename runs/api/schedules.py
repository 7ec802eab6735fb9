"""The REST API's schedules router: /api/projects/{ref}/schedules[...] (mounted in studio/api.py).

Same auth, error shape and paging as the runs router. Writes go through runs.schedules.store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from ninja import Body, Field, Query, Router, Schema, Status

from ..models import Run, Schedule, ScheduleOccurrence
from ..models.paging import InvalidCursor, page_by, page_of_runs
from ..schedules import spec, store, sync
from . import (
    READ_ERRORS,
    ApiError,
    _created_by,
    _project,
)
from . import _field as field_error
from .schemas import ErrorOut, PageInfo, RunOut, RunPage, run_to_wire

router = Router(tags=["schedules"])

WRITE_ERRORS_409 = {frozenset({400, 401, 403, 404, 409, 413, 422}): ErrorOut}


class ScheduleOut(Schema):
    id: str
    name: str
    description: str
    target: str
    input: Any
    config: Any
    timeout_seconds: int | None
    backoff_limit: int | None
    cron: str | None
    interval_seconds: int | None
    run_at: datetime | None
    timezone: str
    start_at: datetime | None
    end_at: datetime | None
    max_runs: int | None
    concurrency_policy: str
    catch_up: str
    starting_deadline_seconds: int
    enabled: bool
    pause_note: str
    source: str
    next_fire_at: datetime | None
    last_fired_at: datetime | None
    last_run_id: str | None
    run_count: int
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]


class ScheduleList(Schema):
    data: list[ScheduleOut]


class OccurrenceOut(Schema):
    slot: datetime
    outcome: str
    run_id: str | None
    reason: str | None
    recorded_at: datetime
    count: int


class OccurrencePage(Schema):
    data: list[OccurrenceOut]
    page_info: PageInfo


class PageQuery(Schema):
    cursor: str | None = Field(None, max_length=500, description="`page_info.next` or `prev`.")
    limit: int = Field(50, ge=1, le=200)


class PreviewQuery(Schema):
    count: int = Field(5, ge=1, le=spec.MAX_PREVIEW)


class FireTime(Schema):
    utc: datetime
    local: str


class PreviewOut(Schema):
    timezone: str
    data: list[FireTime]


class PauseIn(Schema):
    note: str = Field("", max_length=500)


class TriggerOut(Schema):
    accepted: bool
    run: RunOut


def _schedule(request, ref: str, schedule_id: str) -> Schedule:
    project = _project(request, ref)
    # An id that no schedule can have (too long, a NUL byte) is answered without the database.
    schedule = (
        Schedule.objects.select_related("project").filter(project=project, slug=schedule_id).first()
        if spec.ID_RE.match(schedule_id)
        else None
    )
    if schedule is None:
        raise ApiError(404, f"no schedule {schedule_id[:100]!r}", code="not_found")
    return schedule


def _from_store_error(exc: store.ScheduleError) -> ApiError:
    detail = [e.as_dict() for e in exc.errors] or None
    return ApiError(exc.status, exc.message, code=exc.code, detail=detail)


def _body(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise ApiError(
            422,
            "the body must be a JSON object",
            code="validation_error",
            detail=field_error("body", "must be a JSON object", "type"),
        )
    return payload


@router.get(
    "/projects/{ref}/schedules",
    response={200: ScheduleList, **READ_ERRORS},
    summary="List a project's schedules",
)
def list_schedules(request, ref: str):
    project = _project(request, ref)
    sync.sync_files()  # file schedules appear (and go) without waiting for a worker
    return {"data": [store.to_wire(s) for s in Schedule.objects.filter(project=project)]}


@router.post(
    "/projects/{ref}/schedules",
    response={201: ScheduleOut, **WRITE_ERRORS_409},
    summary="Create a schedule",
)
def create_schedule(request, ref: str, payload: Body[Any]):
    project = _project(request, ref)
    try:
        schedule = store.create(project, _body(payload), created_by=_created_by(request.auth))
    except store.ScheduleError as exc:
        raise _from_store_error(exc) from None
    return Status(201, store.to_wire(schedule))


@router.get(
    "/projects/{ref}/schedules/{schedule_id}",
    response={200: ScheduleOut, **READ_ERRORS},
    summary="Get a schedule",
)
def get_schedule(request, ref: str, schedule_id: str):
    return store.to_wire(_schedule(request, ref, schedule_id))


@router.patch(
    "/projects/{ref}/schedules/{schedule_id}",
    response={200: ScheduleOut, **WRITE_ERRORS_409},
    summary="Change a schedule",
)
def update_schedule(request, ref: str, schedule_id: str, payload: Body[Any]):
    schedule = _schedule(request, ref, schedule_id)
    try:
        schedule = store.update(schedule, _body(payload))
    except store.ScheduleError as exc:
        raise _from_store_error(exc) from None
    return store.to_wire(schedule)


@router.delete(
    "/projects/{ref}/schedules/{schedule_id}",
    response={204: None, **WRITE_ERRORS_409},
    summary="Delete a schedule (its runs stay)",
)
def delete_schedule(request, ref: str, schedule_id: str):
    try:
        store.delete(_schedule(request, ref, schedule_id))
    except store.ScheduleError as exc:
        raise _from_store_error(exc) from None
    return Status(204, None)


@router.post(
    "/projects/{ref}/schedules/{schedule_id}/pause",
    response={200: ScheduleOut, **WRITE_ERRORS_409},
    summary="Pause a schedule, with an optional note",
)
def pause_schedule(request, ref: str, schedule_id: str, payload: Body[PauseIn | None] = None):
    schedule = _schedule(request, ref, schedule_id)
    try:
        schedule = store.pause(schedule, payload.note if payload else "")
    except store.ScheduleError as exc:
        raise _from_store_error(exc) from None
    return store.to_wire(schedule)


@router.post(
    "/projects/{ref}/schedules/{schedule_id}/resume",
    response={200: ScheduleOut, **WRITE_ERRORS_409},
    summary="Resume a paused schedule (slots missed while paused are not caught up)",
)
def resume_schedule(request, ref: str, schedule_id: str):
    return store.to_wire(store.resume(_schedule(request, ref, schedule_id)))


@router.post(
    "/projects/{ref}/schedules/{schedule_id}/trigger",
    response={202: TriggerOut, **WRITE_ERRORS_409},
    summary="Run the schedule's target now, outside its slots",
)
def trigger_schedule(request, ref: str, schedule_id: str):
    schedule = _schedule(request, ref, schedule_id)
    try:
        run = store.trigger(schedule, created_by=_created_by(request.auth))
    except store.ScheduleError as exc:
        raise _from_store_error(exc) from None
    return Status(202, {"accepted": True, "run": run_to_wire(run)})


def _bad_cursor() -> ApiError:
    return ApiError(
        422,
        "cursor is not one this API handed out",
        code="invalid_cursor",
        detail=field_error("cursor", "is not a cursor from page_info", "cursor"),
    )


@router.get(
    "/projects/{ref}/schedules/{schedule_id}/occurrences",
    response={200: OccurrencePage, **READ_ERRORS},
    summary="The schedule's ledger: every slot and what became of it, newest first",
)
def list_occurrences(request, ref: str, schedule_id: str, query: Query[PageQuery]):
    schedule = _schedule(request, ref, schedule_id)
    rows = ScheduleOccurrence.objects.filter(schedule=schedule)
    try:
        page, page_info = page_by(rows, "slot", query.cursor, query.limit)
    except InvalidCursor:
        raise _bad_cursor() from None
    return {"data": [store.occurrence_to_wire(o) for o in page], "page_info": page_info}


@router.get(
    "/projects/{ref}/schedules/{schedule_id}/runs",
    response={200: RunPage, **READ_ERRORS},
    summary="The schedule's runs, newest first",
)
def list_schedule_runs(request, ref: str, schedule_id: str, query: Query[PageQuery]):
    schedule = _schedule(request, ref, schedule_id)
    try:
        runs, page_info = page_of_runs(
            Run.objects.filter(project=schedule.project, schedule_id=schedule.slug),
            query.cursor,
            query.limit,
        )
    except InvalidCursor:
        raise _bad_cursor() from None
    return {"data": [run_to_wire(r) for r in runs], "page_info": page_info}


@router.get(
    "/projects/{ref}/schedules/{schedule_id}/preview",
    response={200: PreviewOut, **READ_ERRORS},
    summary="The next fire times, from now or from start_at (whichever is later)",
)
def preview_schedule(request, ref: str, schedule_id: str, query: Query[PreviewQuery]):
    schedule = _schedule(request, ref, schedule_id)
    return {"timezone": schedule.timezone, "data": preview_times(schedule, query.count)}


def preview_times(schedule: Schedule, count: int) -> list[dict]:
    tz = spec.zone(schedule.timezone)
    slots = spec.preview(schedule.timing, timezone.now(), count)
    return [{"utc": s, "local": s.astimezone(tz).isoformat()} for s in slots]
