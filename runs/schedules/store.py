"""Create, change, pause, resume, trigger and delete schedules: the one path for the API, the
dashboard, the admin and file sync. Firing lives in runs.schedules.engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import service
from ..models import Project, Run, Schedule, ScheduleOccurrence
from ..orchestration.discovery import discover_workflows
from ..validation import FieldError, apply_defaults, json_problem, schema_errors
from . import spec


class ScheduleError(Exception):
    """A schedule request that cannot be honoured; `status` is the HTTP status to answer."""

    def __init__(
        self,
        message: str,
        *,
        errors: list[FieldError] | None = None,
        code: str = "invalid_schedule",
        status: int = 422,
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors or []
        self.code = code
        self.status = status


@dataclass(frozen=True)
class TargetInfo:
    target: str
    name: str
    input_schema: dict | None
    schedulable: bool


def resolve_target(target: str) -> TargetInfo:
    """What a schedule's target names, if it may be scheduled; ScheduleError otherwise.

    The one place that knows the kinds of target: workflows plug in here when they land."""
    if isinstance(target, str) and target.startswith("workflow:"):
        workflow_id = target.removeprefix("workflow:")
        definition = discover_workflows().get(workflow_id)
        if definition is None:
            raise ScheduleError(
                f"no workflow with id {workflow_id!r}",
                errors=[FieldError("target", f"no workflow with id {workflow_id!r}", "exists")],
                code="target_not_found",
            )
    else:
        try:
            definition = service.resolve_task(target)
        except service.RunError as exc:
            raise ScheduleError(exc.message, errors=exc.errors, code=exc.code) from None
    info = TargetInfo(
        target=definition.target,
        name=definition.name,
        input_schema=definition.input_schema,
        schedulable=definition.schedulable,
    )
    if not info.schedulable:
        raise ScheduleError(
            f"{info.target} is not schedulable: mark it schedulable=True in its file",
            errors=[FieldError("target", "is not schedulable", "schedulable")],
            code="not_schedulable",
        )
    return info


def check_target_and_input(target: str, input: dict) -> TargetInfo:
    """The target exists and is schedulable, and `input` fits its input_schema."""
    info = resolve_target(target)
    problem = json_problem(input)
    if problem:
        raise ScheduleError(f"input: {problem}", errors=[FieldError("input", problem, "storable")])
    errors = schema_errors(info.input_schema, apply_defaults(info.input_schema, input))
    if errors:
        raise ScheduleError("; ".join(str(e) for e in errors), errors=errors, code="invalid_input")
    return info


def clean(data: dict, *, require_id: bool = True) -> dict:
    try:
        return spec.clean(data, require_id=require_id)
    except spec.SpecError as exc:
        raise ScheduleError(
            str(exc), errors=[FieldError(f, m, r) for f, m, r in exc.errors]
        ) from None


MODEL_FIELDS = tuple(f for f in spec.WRITABLE_FIELDS if f != "id")


def _apply(schedule: Schedule, cleaned: dict) -> None:
    for name in MODEL_FIELDS:
        setattr(schedule, name, cleaned[name])
    if not schedule.name:
        schedule.name = cleaned["id"]


def _as_data(schedule: Schedule) -> dict:
    data = {name: getattr(schedule, name) for name in MODEL_FIELDS}
    data["id"] = schedule.slug
    return data


def first_fire(schedule: Schedule, now: datetime) -> None:
    """Point next_fire_at at the first slot from now on, or retire the schedule if none."""
    nxt = schedule.timing.next_after(now - timedelta(microseconds=1))
    schedule.next_fire_at = nxt
    if schedule.max_runs is not None and schedule.run_count >= schedule.max_runs:
        schedule.next_fire_at = None
        schedule.done_at, schedule.done_reason = now, f"reached max_runs ({schedule.max_runs})"
    elif nxt is None:
        schedule.done_at = now
        schedule.done_reason = "no fire time left (run_at or end_at has passed)"
    else:
        schedule.done_at, schedule.done_reason = None, ""


def create(
    project: Project,
    data: dict,
    *,
    source: str = "api",
    source_path: str = "",
    created_by: str = "",
) -> Schedule:
    cleaned = clean(data)
    check_target_and_input(cleaned["target"], cleaned["input"])
    now = timezone.now()
    if source == "api" and cleaned["run_at"] is not None and cleaned["run_at"] <= now:
        raise ScheduleError(
            "run_at is in the past",
            errors=[FieldError("run_at", "is in the past", "minimum")],
        )
    schedule = Schedule(project=project, slug=cleaned["id"], source=source, created_at=now)
    schedule.source_path = source_path
    schedule.created_by = created_by
    _apply(schedule, cleaned)
    if not schedule.enabled:
        schedule.paused_at = now
    first_fire(schedule, now)
    try:
        with transaction.atomic():
            schedule.save(force_insert=True)
    except IntegrityError:
        raise ScheduleError(
            f"a schedule with id {cleaned['id']!r} already exists in this project",
            errors=[FieldError("id", "already exists", "unique")],
            code="conflict",
            status=409,
        ) from None
    return schedule


def update(schedule: Schedule, changes: dict, *, allow_file: bool = False) -> Schedule:
    """Change some fields (a PATCH). Timing changes take effect from now on."""
    if schedule.is_file and not allow_file:
        raise file_schedule_error(schedule)
    if "id" in changes and changes["id"] != schedule.slug:
        raise ScheduleError(
            "a schedule's id cannot change", errors=[FieldError("id", "cannot change", "const")]
        )
    merged = _as_data(schedule)
    if {"cron", "interval_seconds", "run_at"} & set(changes):
        # Switching kind: the new one replaces the old.
        merged.update(cron=None, interval_seconds=None, run_at=None)
    merged.update(changes)
    for key in ("run_at", "start_at", "end_at"):
        if isinstance(merged[key], datetime):
            merged[key] = merged[key].isoformat()
    cleaned = clean(merged)
    check_target_and_input(cleaned["target"], cleaned["input"])
    now = timezone.now()
    timing_changed = any(
        cleaned[k] != getattr(schedule, k)
        for k in (
            "cron",
            "interval_seconds",
            "run_at",
            "timezone",
            "start_at",
            "end_at",
            "max_runs",
        )
    )
    if "run_at" in changes and cleaned["run_at"] is not None and cleaned["run_at"] <= now:
        raise ScheduleError(
            "run_at is in the past", errors=[FieldError("run_at", "is in the past", "minimum")]
        )
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        was_enabled = locked.enabled
        _apply(locked, cleaned)
        locked.fire_error = ""
        if timing_changed:
            first_fire(locked, now)
        if was_enabled and not locked.enabled:
            locked.paused_at = now
        locked.save()
        if not was_enabled and locked.enabled:
            _record_paused_span(locked, now)
            locked.save()
    return locked


def file_schedule_error(schedule: Schedule) -> ScheduleError:
    return ScheduleError(
        f"schedule {schedule.slug!r} comes from {schedule.source_path or 'a file'}: "
        "change or remove the file instead",
        code="file_schedule",
        status=409,
    )


def delete(schedule: Schedule) -> None:
    if schedule.is_file:
        raise file_schedule_error(schedule)
    schedule.delete()


def pause(schedule: Schedule, note: str = "") -> Schedule:
    if not isinstance(note, str) or len(note) > 500 or "\x00" in note:
        raise ScheduleError(
            "note must be text of at most 500 characters",
            errors=[FieldError("note", "must be text of at most 500 characters", "maxLength")],
        )
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        if locked.enabled:
            locked.enabled = False
            locked.paused_at = timezone.now()
        locked.pause_note = note
        locked.save(update_fields=["enabled", "paused_at", "pause_note", "updated_at"])
    return locked


def resume(schedule: Schedule) -> Schedule:
    """Enable again. Slots that came due while paused become one `missed` row (reason
    `paused`) and are not caught up."""
    now = timezone.now()
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        if not locked.enabled:
            locked.enabled = True
            locked.pause_note = ""
            _record_paused_span(locked, now)
            locked.save()
    return locked


def _record_paused_span(schedule: Schedule, now: datetime) -> None:
    """Summarise the slots that came due while paused in one row; move on to the next slot."""
    first = schedule.next_fire_at
    if schedule.done_at is None and first is not None and first <= now:
        count = 0
        for slot in schedule.timing.slots_after(first - timedelta(microseconds=1)):
            if slot > now or count >= 1_000_000:
                break
            count += 1
        ScheduleOccurrence.objects.get_or_create(
            schedule=schedule,
            slot=first,
            defaults={
                "outcome": ScheduleOccurrence.Outcome.MISSED,
                "reason": "paused",
                "count": count,
                "recorded_at": now,
            },
        )
        first_fire(schedule, now)
    schedule.paused_at = None


def trigger(schedule: Schedule, *, created_by: str | None = None) -> Run:
    """Run the target now, outside the schedule's slots (no ledger row, no run_count)."""
    check_target_and_input(schedule.target, schedule.input)
    try:
        result = service.create_run(
            schedule.project,
            target=schedule.target,
            input=schedule.input,
            config=schedule.config,
            timeout_seconds=schedule.timeout_seconds,
            backoff_limit=schedule.backoff_limit,
            trigger_kind=Run.Trigger.SCHEDULE,
            trigger_id=schedule.slug,
            schedule_id=schedule.slug,
            created_by=created_by,
            metadata={"scheduled_for": None, "manual": True},
        )
    except service.RunError as exc:
        raise ScheduleError(exc.message, errors=exc.errors, code=exc.code) from None
    Schedule.objects.filter(pk=schedule.pk).update(last_run_id=result.run.pk)
    return result.run


def to_wire(schedule: Schedule) -> dict[str, Any]:
    """A schedule as the API sends it: the writable fields plus the read-only ones."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": schedule.slug,
        "name": schedule.name,
        "description": schedule.description,
        "target": schedule.target,
        "input": schedule.input,
        "config": schedule.config,
        "timeout_seconds": schedule.timeout_seconds,
        "backoff_limit": schedule.backoff_limit,
        "cron": schedule.cron,
        "interval_seconds": schedule.interval_seconds,
        "run_at": iso(schedule.run_at),
        "timezone": schedule.timezone,
        "start_at": iso(schedule.start_at),
        "end_at": iso(schedule.end_at),
        "max_runs": schedule.max_runs,
        "concurrency_policy": schedule.concurrency_policy,
        "catch_up": schedule.catch_up,
        "starting_deadline_seconds": schedule.starting_deadline_seconds,
        "enabled": schedule.enabled,
        "pause_note": schedule.pause_note,
        "source": schedule.source,
        "next_fire_at": iso(schedule.next_fire_at),
        "last_fired_at": iso(schedule.last_fired_at),
        "last_run_id": schedule.last_run_id,
        "run_count": schedule.run_count,
        "created_at": iso(schedule.created_at),
        "updated_at": iso(schedule.updated_at),
        "metadata": {
            "done": schedule.is_done,
            "done_reason": schedule.done_reason or None,
            "fire_error": schedule.fire_error or None,
            "file_error": schedule.file_error or None,
            "source_path": schedule.source_path or None,
            "description_of_cron": spec.describe_cron(schedule.cron) if schedule.cron else None,
        },
    }


def occurrence_to_wire(occ: ScheduleOccurrence) -> dict[str, Any]:
    return {
        "slot": occ.slot.isoformat().replace("+00:00", "Z"),
        "outcome": occ.outcome,
        "run_id": occ.run_id,
        "reason": occ.reason or None,
        "recorded_at": occ.recorded_at.isoformat().replace("+00:00", "Z"),
        "count": occ.count,
    }
