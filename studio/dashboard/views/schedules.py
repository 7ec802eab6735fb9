"""Schedules: the list, a schedule's page (ledger and runs), the create/edit form with a live
cron preview, and pause / resume / trigger now / delete. Viewers read; operators manage."""

from __future__ import annotations

import json
from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from runs.definitions import discover
from runs.models import ACTIVE_STATUSES, Run, Schedule
from runs.schedules import spec, store, sync

from ..permissions import Role, get_access
from ..rendering import render_blocks

TIMING_FIELDS = ("cron", "interval_seconds", "run_at", "timezone", "start_at", "end_at")


def _schedule(access, schedule_id: str) -> Schedule:
    schedule = (
        Schedule.objects.filter(project=access.project, slug=schedule_id).first()
        if spec.ID_RE.match(schedule_id)
        else None
    )
    if schedule is None:
        raise Http404("no such schedule")
    return schedule


def _last_runs(schedules: list[Schedule]) -> dict[str, Run]:
    ids = [s.last_run_id for s in schedules if s.last_run_id]
    return {
        r.pk: r
        for r in Run.objects.filter(pk__in=ids).only(
            "id", "status", "created_at", "cancel_requested_at", "completed_at"
        )
    }


@login_required
@require_GET
def schedules(request, project: str):
    access = get_access(request, project)
    report = sync.sync_files()
    rows = list(Schedule.objects.filter(project=access.project).order_by("slug"))
    last = _last_runs(rows)
    return render(
        request,
        "schedules/schedules.html",
        {
            "access": access,
            "project": access.project,
            "rows": [(s, last.get(s.last_run_id)) for s in rows],
            "errors": report.errors,
            "nav": "schedules",
        },
    )


@login_required
@require_GET
def schedule_detail(request, project: str, schedule_id: str):
    access = get_access(request, project)
    schedule = _schedule(access, schedule_id)
    context = {
        "access": access,
        "project": access.project,
        "schedule": schedule,
        "upcoming": _preview(schedule.timing, schedule.timezone, 5),
        "occurrences": list(schedule.occurrences.order_by("-slot", "-id")[:50]),
        "runs": list(
            Run.objects.filter(project=access.project, schedule_id=schedule.slug)
            .only("id", "status", "created_at", "metadata", "cancel_requested_at", "completed_at")
            .order_by("-created_at", "-id")[:20]
        ),
        "last_run": _last_runs([schedule]).get(schedule.last_run_id),
        "description": spec.describe_cron(schedule.cron) if schedule.cron else "",
        "input_json": json.dumps(schedule.input),
        # New slots and runs appear without a reload while the schedule can still fire;
        # a retired one's page stops asking (the fragment comes back without hx-trigger).
        "polling": not schedule.is_done or _active_runs_exist(schedule),
        "nav": "schedules",
    }
    if request.htmx and "live" in request.GET:
        return render_blocks(request, "schedules/detail.html", ["live"], context)
    return render(request, "schedules/detail.html", context)


def _active_runs_exist(schedule: Schedule) -> bool:
    return Run.objects.filter(
        project_id=schedule.project_id, schedule_id=schedule.slug, status__in=ACTIVE_STATUSES
    ).exists()


def _preview(timing, zone_name: str, count: int) -> list[tuple[datetime, str]]:
    """(UTC time, wall-clock text in the schedule's zone) for the next `count` slots. Formatted
    here: the template's date filter would convert back to the site's zone."""
    tz = spec.zone(zone_name)
    return [
        (s, s.astimezone(tz).strftime("%a %Y-%m-%d %H:%M:%S %Z"))
        for s in spec.preview(timing, timezone.now(), count)
    ]


# --- The form ---------------------------------------------------------------------------------


class ScheduleForm(forms.Form):
    """Text in, the API's field names out: store.clean does the real validation."""

    id = forms.CharField(max_length=100, label="ID", help_text="Lowercase letters, digits, - and _")
    name = forms.CharField(max_length=255, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    target = forms.ChoiceField(help_text="Only tasks marked schedulable=True are listed.")
    input = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        required=False,
        help_text="A JSON object, checked against the task's input schema.",
    )
    timezone = forms.CharField(
        max_length=64, initial="UTC", help_text="IANA name, e.g. Europe/Berlin"
    )
    cron = forms.CharField(
        max_length=200,
        required=False,
        help_text="Five fields (minute hour day-of-month month day-of-week) or @daily, @hourly...",
    )
    interval_seconds = forms.IntegerField(required=False, label="Every (seconds)")
    run_at = forms.CharField(required=False, label="Once at", help_text="e.g. 2030-01-31T09:00")
    start_at = forms.CharField(required=False)
    end_at = forms.CharField(required=False)
    max_runs = forms.IntegerField(required=False)
    concurrency_policy = forms.ChoiceField(
        choices=[(p, p) for p in spec.CONCURRENCY_POLICIES], initial="Allow"
    )
    catch_up = forms.ChoiceField(choices=[(m, m) for m in spec.CATCH_UP_MODES], initial="latest")
    starting_deadline_seconds = forms.IntegerField(required=False, initial=3600)

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [
            (d.target, f"{d.name} ({d.target})")
            for d in sorted(discover().tasks.values(), key=lambda d: d.name.lower())
            if d.schedulable
        ]
        if editing:
            self.fields["id"].disabled = True

    def data_for_store(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}
        raw = (self.cleaned_data.get("input") or "").strip()
        if raw:
            try:
                data["input"] = json.loads(raw)
            except ValueError as exc:
                self.add_error("input", f"not valid JSON: {exc}")
        for key in ("cron", "interval_seconds", "run_at"):
            data.setdefault(key, None)
        return data


def _initial(schedule: Schedule) -> dict:
    tz = spec.zone(schedule.timezone)

    def local(value):
        return value.astimezone(tz).replace(tzinfo=None).isoformat() if value else ""

    return {
        **{f: getattr(schedule, f) for f in ("name", "description", "target", "cron")},
        "id": schedule.slug,
        "input": json.dumps(schedule.input, indent=2) if schedule.input else "",
        "interval_seconds": schedule.interval_seconds,
        "run_at": local(schedule.run_at),
        "timezone": schedule.timezone,
        "start_at": local(schedule.start_at),
        "end_at": local(schedule.end_at),
        "max_runs": schedule.max_runs,
        "concurrency_policy": schedule.concurrency_policy,
        "catch_up": schedule.catch_up,
        "starting_deadline_seconds": schedule.starting_deadline_seconds,
    }


def _apply_errors(form: ScheduleForm, exc: store.ScheduleError) -> None:
    if not exc.errors:
        form.add_error(None, exc.message)
    for error in exc.errors:
        name = error.field.split(".")[0]
        form.add_error(
            name if name in form.fields else None,
            f"{error.field}: {error.message}" if name != error.field else error.message,
        )


@login_required
@require_http_methods(["GET", "POST"])
def schedule_form(request, project: str, schedule_id: str | None = None):
    access = get_access(request, project, Role.OPERATOR)
    schedule = _schedule(access, schedule_id) if schedule_id else None
    if schedule is not None and schedule.is_file:
        return HttpResponse(
            f"{schedule.slug} comes from {schedule.source_path}: change the file instead.",
            status=409,
            content_type="text/plain",
        )
    editing = schedule is not None
    if request.method == "POST":
        form = ScheduleForm(
            request.POST, editing=editing, initial=_initial(schedule) if editing else None
        )
        if form.is_valid():
            data = form.data_for_store()
            if form.is_valid():
                try:
                    if editing:
                        data.pop("id", None)
                        changes = {k: data.get(k) for k in form.fields if k != "id"}
                        changes["input"] = data.get("input", {})
                        if changes.get("starting_deadline_seconds") is None:
                            changes.pop("starting_deadline_seconds")
                        saved = store.update(schedule, changes)
                    else:
                        saved = store.create(
                            access.project, data, created_by=request.user.get_username()
                        )
                except store.ScheduleError as exc:
                    _apply_errors(form, exc)
                else:
                    messages.success(
                        request, f"Schedule “{saved.name}” {'saved' if editing else 'created'}."
                    )
                    return redirect("dashboard:schedule", project=project, schedule_id=saved.slug)
        status = 422
    else:
        form = ScheduleForm(editing=editing, initial=_initial(schedule) if editing else None)
        status = 200
    return render(
        request,
        "schedules/form.html",
        {
            "access": access,
            "project": access.project,
            "form": form,
            "schedule": schedule,
            "nav": "schedules",
            **_preview_context(form.data if request.method == "POST" else form.initial),
        },
        status=status,
    )


def _preview_context(values) -> dict:
    """The cron's description and the next five fire times for the form's current values."""
    data = {k: (values.get(k) or None) for k in TIMING_FIELDS}
    if not (data["cron"] or data["interval_seconds"] or data["run_at"]):
        return {"preview_error": "", "preview": [], "description": ""}
    try:
        if data["interval_seconds"] is not None:
            data["interval_seconds"] = int(data["interval_seconds"])
    except ValueError:
        return {
            "preview_error": "Every (seconds) must be a whole number.",
            "preview": [],
            "description": "",
        }
    try:
        cleaned = spec.clean({**data, "id": "preview", "target": "task:preview"})
    except spec.SpecError as exc:
        timing_errors = [m for f, m, _ in exc.errors if f in TIMING_FIELDS]
        return {"preview_error": "; ".join(timing_errors), "preview": [], "description": ""}
    timing = spec.timing_of({**cleaned, "anchor": timezone.now()})
    return {
        "preview_error": "",
        "description": spec.describe_cron(cleaned["cron"]) if cleaned["cron"] else "",
        "preview": _preview(timing, cleaned["timezone"], 5),
    }


@login_required
@require_GET
def schedule_preview(request, project: str):
    """The form's live preview (htmx): description and next five times for what is typed."""
    access = get_access(request, project)
    return render_blocks(
        request,
        "schedules/form.html",
        ["preview"],
        {"access": access, "project": access.project, **_preview_context(request.GET)},
    )


# --- Actions ----------------------------------------------------------------------------------


@login_required
@require_POST
def schedule_action(request, project: str, schedule_id: str, action: str):
    handler = ACTIONS.get(action)
    if handler is None:
        raise Http404("no such action")
    access = get_access(request, project, Role.OPERATOR)
    return handler(request, project, _schedule(access, schedule_id))


def _pause(request, project: str, schedule: Schedule):
    try:
        store.pause(schedule, request.POST.get("note", "")[:500])
    except store.ScheduleError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Paused “{schedule.name}”.")
    return redirect("dashboard:schedule", project=project, schedule_id=schedule.slug)


def _resume(request, project: str, schedule: Schedule):
    schedule = store.resume(schedule)
    messages.success(
        request, f"Resumed “{schedule.name}”. Slots missed while paused are not caught up."
    )
    return redirect("dashboard:schedule", project=project, schedule_id=schedule.slug)


def _trigger(request, project: str, schedule: Schedule):
    try:
        run = store.trigger(schedule, created_by=request.user.get_username())
    except store.ScheduleError as exc:
        messages.error(request, f"Could not start a run: {exc.message}")
        return redirect("dashboard:schedule", project=project, schedule_id=schedule.slug)
    messages.success(request, f"Started {run.pk} from “{schedule.name}”.")
    return redirect("dashboard:run", project=project, run_id=run.pk)


def _delete(request, project: str, schedule: Schedule):
    try:
        store.delete(schedule)
    except store.ScheduleError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard:schedule", project=project, schedule_id=schedule.slug)
    messages.success(request, f"Deleted “{schedule.name}”. Its runs stay.")
    return redirect("dashboard:schedules", project=project)


ACTIONS = {"pause": _pause, "resume": _resume, "trigger": _trigger, "delete": _delete}
