"""The runs list, a run's page with its live event log, and cancelling a run."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from runs.definitions import discover
from runs.models import ACTIVE_STATUSES, Run, RunEvent, SavedFilter
from runs.service import cancel_run

from ..forms import RUN_ID, RunFilterForm, day_start, encode_cursor
from ..permissions import Role, get_access
from ..rendering import render_blocks

PAGE_SIZE = 50
LOG_WINDOW = 200  # events shown at first and per "load earlier"
POLL_LIMIT = 500  # events per poll; a poll that hits it asks again at once
PROGRESS_LOOKBACK = 1000  # the progress bar looks this many events back on first render
STATUS_EVENTS = {"run.started", "run.retrying", "run.completed", "run.failed", "run.cancelled"}
# A list row never needs the big columns (input, output, logs).
ROW_FIELDS = (
    "id",
    "project_id",
    "status",
    "target",
    "name",
    "trigger_kind",
    "attempt",
    "created_at",
    "started_at",
    "completed_at",
    "duration_ms",
    "cancel_requested_at",
)


FILTER_KEYS = ("q", "status", "target", "trigger", "since", "until")


def filter_query(data) -> str:
    """The filter part of a runs-list query string (no page cursors), in a stable order."""
    return urlencode([(key, data[key]) for key in FILTER_KEYS if data.get(key)])


@login_required
@require_GET
def runs(request, project: str):
    access = get_access(request, project)
    if request.htmx and "refresh" in request.GET:
        return _refresh_rows(request, access)

    targets = sorted((d.target, d.name) for d in discover().tasks.values())
    form = RunFilterForm(request.GET, targets=targets)
    page: list[Run] = []
    older = newer = None
    if form.is_valid():
        page, older, newer = _page(_filtered(access.project, form.cleaned_data), form.cleaned_data)
    context = {
        "access": access,
        "project": access.project,
        "form": form,
        "runs": page,
        "older": older,
        "newer": newer,
        "active_ids": [r.pk for r in page if not r.is_terminal],
        "nav": "runs",
        "filter_query": filter_query(request.GET),
        "saved_filters": SavedFilter.objects.filter(user=request.user, project=access.project),
    }
    return render(request, "runs/runs.html", context)


def _filtered(project, data: dict):
    qs = Run.objects.filter(project=project).only(*ROW_FIELDS)
    status = data.get("status")
    if status == "active":
        qs = qs.filter(status__in=ACTIVE_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    if data.get("target"):
        target = data["target"]
        qs = qs.filter(
            target=target if target.startswith(("task:", "workflow:")) else f"task:{target}"
        )
    if data.get("trigger"):
        qs = qs.filter(trigger_kind=data["trigger"])
    if data.get("since"):
        qs = qs.filter(created_at__gte=day_start(data["since"]))
    if data.get("until"):
        qs = qs.filter(created_at__lt=day_start(data["until"] + dt.timedelta(days=1)))
    q = data.get("q")
    if q:
        if RUN_ID.match(q):
            qs = qs.filter(pk=q)
        else:
            qs = qs.filter(
                Q(pk__icontains=q)
                | Q(name__icontains=q)
                | Q(target__icontains=q)
                | Q(input__icontains=q)
            )
    return qs


def _page(qs, data: dict):
    """Keyset pagination on (created_at, id): no OFFSET, no COUNT, same cost on every page."""
    before, after = data.get("before"), data.get("after")
    if after:
        when, run_id = after
        rows = list(
            qs.filter(created_at__gte=when)
            .exclude(created_at=when, pk__lte=run_id)
            .order_by("created_at", "id")[: PAGE_SIZE + 1]
        )
        has_newer = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE][::-1]
        has_older = True
    else:
        if before:
            when, run_id = before
            qs = qs.filter(created_at__lte=when).exclude(created_at=when, pk__gte=run_id)
        rows = list(qs.order_by("-created_at", "-id")[: PAGE_SIZE + 1])
        has_older = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        has_newer = before is not None
    older = encode_cursor(rows[-1]) if rows and has_older else None
    newer = encode_cursor(rows[0]) if rows and has_newer else None
    return rows, older, newer


def _refresh_rows(request, access):
    """The runs list's poll: fresh rows for the active runs it shows, as out-of-band swaps."""
    ids = [i for i in request.GET.get("ids", "").split(",") if RUN_ID.match(i)][:PAGE_SIZE]
    rows = list(Run.objects.filter(project=access.project, pk__in=ids).only(*ROW_FIELDS))
    context = {
        "access": access,
        "project": access.project,
        "runs": rows,
        "oob": True,
        "active_ids": [r.pk for r in rows if not r.is_terminal],
    }
    return render_blocks(request, "runs/runs.html", ["row_poller", "rows"], context)


def _latest_progress(run: Run, events: list[RunEvent]) -> dict | None:
    for event in reversed(events):
        if event.event_type == "progress":
            return event.payload
    if len(events) < LOG_WINDOW:
        return None  # the window holds the whole log
    # Bounded: look back a fixed number of events, never the whole (maybe huge) log.
    window = (
        RunEvent.objects.filter(run=run)
        .order_by("-id")
        .values_list("id", flat=True)[PROGRESS_LOOKBACK - 1 : PROGRESS_LOOKBACK]
    )
    floor = next(iter(window), 0)
    latest = (
        RunEvent.objects.filter(run=run, event_type="progress", id__gte=floor)
        .order_by("-id")
        .values_list("payload", flat=True)
        .first()
    )
    return latest


def _run_context(access, run: Run) -> dict:
    return {
        "access": access,
        "project": access.project,
        "run": run,
        "task_exists": run.task_id is not None and discover().get(run.task_id) is not None,
        "nav": "runs",
    }


@login_required
@require_GET
def run_detail(request, project: str, run_id: str):
    access = get_access(request, project)
    run = get_object_or_404(Run.objects.defer("logs"), pk=run_id, project=access.project)
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        before = None
    events_qs = RunEvent.objects.filter(run=run)
    if before is not None:
        events_qs = events_qs.filter(id__lt=before)
    window = list(events_qs.order_by("-id")[: LOG_WINDOW + 1])
    has_earlier = len(window) > LOG_WINDOW
    events = window[:LOG_WINDOW][::-1]
    context = _run_context(access, run)
    context.update(
        events=events,
        earliest=events[0].pk if events else None,
        has_earlier=has_earlier,
        last_event_id=events[-1].pk if events else 0,
        live=not run.is_terminal,
    )
    if request.htmx and before is not None:
        # "Load earlier": the button is replaced by an older window (and a new button).
        return render_blocks(request, "runs/detail.html", ["earlier", "events"], context)
    if before is not None:
        context["live"] = False  # a page of history, not the live tail
        context["windowed"] = True
    context["progress"] = _latest_progress(run, events)
    return render(request, "runs/detail.html", context)


@login_required
@require_GET
def run_events(request, project: str, run_id: str):
    """The live log's poll: events after ?after=<event id>. A quiet run costs one indexed query
    (beyond the session and membership look-ups every request pays) and answers 204."""
    access = get_access(request, project)
    try:
        after = max(0, int(request.GET.get("after", "0")))
    except ValueError:
        after = 0
    events = list(
        RunEvent.objects.filter(run_id=run_id, run__project=access.project, id__gt=after).order_by(
            "id"
        )[:POLL_LIMIT]
    )
    if not events:
        return HttpResponse(status=204)
    blocks = ["events"]
    context = {
        "access": access,
        "project": access.project,
        "run": Run(pk=run_id),
        "events": events,
        "last_event_id": events[-1].pk,
        "live": True,
        "catching_up": len(events) == POLL_LIMIT,
        "oob": True,
    }
    progress = next((e.payload for e in reversed(events) if e.event_type == "progress"), None)
    if progress is not None:
        context["progress"] = progress
        blocks.append("progress")
    if any(e.event_type in STATUS_EVENTS for e in events):
        # The status moved: redraw the header and the result too (one more query, only now).
        run = get_object_or_404(Run.objects.defer("logs"), pk=run_id, project=access.project)
        context.update(_run_context(access, run), live=not run.is_terminal, oob=True)
        blocks += ["summary", "result"]
    blocks.append("poller")
    return render_blocks(request, "runs/detail.html", blocks, context)


@login_required
@require_POST
def run_cancel(request, project: str, run_id: str):
    access = get_access(request, project, Role.OPERATOR)
    run = get_object_or_404(Run.objects.defer("logs"), pk=run_id, project=access.project)
    changed, run = cancel_run(run, reason=f"cancelled by {request.user.get_username()}")
    if request.htmx:
        context = _run_context(access, run)
        context["notice"] = None if changed else "This run had already finished."
        return render_blocks(request, "runs/detail.html", ["summary"], context)
    if changed:
        messages.success(
            request,
            "Cancelling: the run stops at its next check." if run.cancelling else "Run cancelled.",
        )
    else:
        messages.info(request, "This run had already finished; nothing to cancel.")
    return redirect("dashboard:run", project=access.project.slug, run_id=run.pk)


@login_required
@require_GET
def run_logs(request, project: str, run_id: str):
    """The run's stored stdout+stderr as plain text (for logs too long to scroll)."""
    access = get_access(request, project)
    run = get_object_or_404(
        Run.objects.only("id", "project_id", "logs"), pk=run_id, project=access.project
    )
    response = HttpResponse(run.logs, content_type="text/plain; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    return response
