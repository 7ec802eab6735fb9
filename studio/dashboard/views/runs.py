"""The runs list, a run's page with its live event log, and cancelling a run."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest
from django.db.models import Q
from django.db.models.fields.json import KT
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from runs.definitions import discover
from runs.models import ACTIVE_STATUSES, Run, RunEvent, SavedFilter, is_run_id
from runs.models.paging import InvalidCursor, Position
from runs.orchestration.discovery import discover_workflows
from runs.service import cancel_run

from .. import tracebacks
from ..ansi import strip_ansi
from ..forms import RunFilterForm, day_start
from ..permissions import Role, get_access
from ..rendering import render_blocks
from ..templatetags.studio_ui import event_kind
from .workflows import run_panel_context

PAGE_SIZE = 50
MAX_EVENT_ID = 2**63 - 1  # RunEvent.id is a BigAutoField
NEW_RUNS_CAP = 100  # the new-runs banner says "99+" past this
LOG_WINDOW = 200  # events shown at first and per "load earlier"
POLL_LIMIT = 500  # events per poll; a poll that hits it asks again at once
PROGRESS_LOOKBACK = 1000  # the progress bar looks this many events back on first render
MAX_EVENT_ID = 2**63 - 1
MATCH_LIMIT = 1000  # search matches the log jumps between
DOWNLOAD_BATCH = 2000  # events per query while streaming a log download
LOG_KINDS = ("stdout", "stderr", "progress", "studio")
LOG_KIND_LABELS = {
    "stdout": "stdout",
    "stderr": "stderr",
    "progress": "progress",
    "studio": "Studio events",
}
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

    targets = sorted((d.target, d.name) for d in discover().tasks.values()) + sorted(
        (d.target, d.name) for d in discover_workflows().workflows.values()
    )
    form = RunFilterForm(request.GET, targets=targets)
    if request.htmx and "fresh" in request.GET:
        return _new_runs(request, access, form)
    page: list[Run] = []
    older = newer = None
    if form.is_valid():
        page, older, newer = _page(_filtered(access.project, form.cleaned_data), form.cleaned_data)
    first_page = form.is_valid() and not (form.cleaned_data["before"] or form.cleaned_data["after"])
    context = {
        "fresh_cursor": Position.of(page[0]).token() if page and first_page else None,
        "fresh_base": _without(request.GET, "fresh", "before", "after"),
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
    # Filters that cannot be read are the client's error: say so with the status as well.
    return render(request, "runs/runs.html", context, status=200 if form.is_valid() else 400)


def _without(params, *names: str) -> str:
    kept = params.copy()
    for name in names:
        kept.pop(name, None)
    return kept.urlencode()


def _new_runs(request, access, form: RunFilterForm):
    """The runs list's "N new runs · show" banner: runs matching the filters that arrived after
    the newest row on screen (?fresh=<its cursor>). Counts at most NEW_RUNS_CAP."""
    count = 0
    cursor = request.GET.get("fresh", "")
    if form.is_valid():
        try:
            position = Position.parse(cursor)
        except InvalidCursor:
            position = None  # no banner for a position we did not hand out
        if position is not None:
            newer = (
                _filtered(access.project, form.cleaned_data)
                .filter(created_at__gte=position.created_at)
                .exclude(created_at=position.created_at, pk__lte=position.run_id)
            )
            count = newer.values("pk")[:NEW_RUNS_CAP].count()
    context = {
        "access": access,
        "project": access.project,
        "new_runs": count,
        "new_runs_capped": count >= NEW_RUNS_CAP,
        "fresh_cursor": cursor,
        "fresh_base": _without(request.GET, "fresh", "before", "after"),
    }
    return render_blocks(request, "runs/runs.html", ["new_runs"], context)


def _filtered(project, data: dict):
    status = data.get("status")
    target = data.get("target")
    if target and not target.startswith(("task:", "workflow:")):
        target = f"task:{target}"  # the form also takes a bare task id
    since, until = data.get("since"), data.get("until")
    return (
        Run.objects.owned_by(project)
        .only(*ROW_FIELDS)
        # The error's message only (not its traceback), for the failed rows' excerpt.
        .annotate(error_message=KT("error__message"))
        .matching(
            status=ACTIVE_STATUSES if status == "active" else (status or None),
            target=target or None,
            trigger_kind=data.get("trigger") or None,
            created_from=day_start(since) if since else None,
            created_before=day_start(until + dt.timedelta(days=1)) if until else None,
            # Workflow steps' child runs only when asked for (a run id finds any run).
            root_only=not data.get("children") and not is_run_id(data.get("q") or ""),
        )
        .search(data.get("q") or "")
    )


def _page(qs, data: dict):
    """Keyset pagination on (created_at, id): no OFFSET, no COUNT, same cost on every page."""
    page = qs.keyset(limit=PAGE_SIZE, before=data.get("before"), after=data.get("after"))
    older = page.older.token() if page.older else None
    newer = page.newer.token() if page.newer else None
    return page.rows, older, newer


def _refresh_rows(request, access):
    """The runs list's poll: fresh rows for the active runs it shows, as out-of-band swaps."""
    ids = [i for i in request.GET.get("ids", "").split(",") if is_run_id(i)][:PAGE_SIZE]
    rows = list(
        Run.objects.filter(project=access.project, pk__in=ids)
        .only(*ROW_FIELDS)
        .annotate(error_message=KT("error__message"))
    )
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
    if events and len(events) < LOG_WINDOW:
        return None  # the window holds the whole log (no events given: look in the database)
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
    error = run.error if isinstance(run.error, dict) else None
    return {
        "access": access,
        "project": access.project,
        "run": run,
        "task_exists": run.task_id is not None and discover().get(run.task_id) is not None,
        "traceback": tracebacks.parse(
            str(error.get("detail") or ""), str(error.get("message") or ""), run.task_id
        )
        if error
        else None,
        "nav": "runs",
    }


def _event_position(request, name: str) -> int | None:
    """?before= / ?after= / ?around= / ?match=: a number, or None when absent or not a number.
    A number no event id can be (the column is a signed 64-bit integer) is a forged link: 400,
    not a query."""
    try:
        value = int(request.GET.get(name, ""))
    except ValueError:
        return None
    if not 0 <= value <= MAX_EVENT_ID:
        raise BadRequest(f"?{name}= is not an event id")
    return value


def _log_kinds(request) -> set[str]:
    """The log's filter chips. No `show` at all means everything; `show=` (the form's marker)
    with nothing checked means nothing."""
    if "show" not in request.GET:
        return set(LOG_KINDS)
    return {k for k in request.GET.getlist("show") if k in LOG_KINDS}


def _kind_q(kinds: set[str]) -> Q | None:
    if kinds >= set(LOG_KINDS):
        return None
    q = Q(pk__in=[])
    if "stdout" in kinds:
        q |= Q(event_type="log", payload__stream="stdout")
    if "stderr" in kinds:
        q |= Q(event_type="log", payload__stream="stderr")
    if "progress" in kinds:
        q |= Q(event_type="progress")
    if "studio" in kinds:
        q |= ~Q(event_type__in=["log", "progress"])
    return q


def _log_window(request, run: Run) -> dict:
    """The events the log shows: the tail (live), an older window (`before`), a window around a
    linked line (`around`) or around the current search match (`q`, `match`)."""
    kinds = _log_kinds(request)
    events_qs = RunEvent.objects.filter(run=run)
    kind_q = _kind_q(kinds)
    if kind_q is not None:
        events_qs = events_qs.filter(kind_q)
    q = request.GET.get("q", "").strip()[:200]
    before, around = _event_position(request, "before"), _event_position(request, "around")
    matches: list[int] = []
    match = None
    if q:
        # Server-side: a 3,000-line log is searched in the database, not in the browser.
        matches = list(
            events_qs.filter(
                Q(event_type="log", payload__line__icontains=q)
                | Q(event_type="progress", payload__message__icontains=q)
            )
            .order_by("id")
            .values_list("id", flat=True)[:MATCH_LIMIT]
        )
        if matches:
            match = min(max(_event_position(request, "match") or 1, 1), len(matches))
            around = matches[match - 1]
    has_later = False
    if around is not None:
        half = LOG_WINDOW // 2
        head = list(events_qs.filter(id__lt=around).order_by("-id")[: half + 1])
        tail = list(events_qs.filter(id__gte=around).order_by("id")[: half + 1])
        has_earlier, has_later = len(head) > half, len(tail) > half
        events = head[:half][::-1] + tail[:half]
    else:
        if before is not None:
            events_qs = events_qs.filter(id__lt=before)
        window = list(events_qs.order_by("-id")[: LOG_WINDOW + 1])
        has_earlier = len(window) > LOG_WINDOW
        events = window[:LOG_WINDOW][::-1]
        has_later = before is not None
    at_tail = not has_later
    live = not run.is_terminal and at_tail and before is None
    # A live run read away from its tail (search, a linked line, older events) still settles
    # when it ends: a quiet poll watches for new events without adding them to this window.
    watch = not run.is_terminal and not live
    watch_after = (
        RunEvent.objects.filter(run=run).order_by("-id").values_list("id", flat=True).first() or 0
        if watch
        else 0
    )
    return {
        "watch": watch,
        "watch_after": watch_after,
        "events": events,
        "earliest": events[0].pk if events else None,
        "has_earlier": has_earlier,
        "last_event_id": events[-1].pk if events else _event_position(request, "after") or 0,
        "live": live,
        "windowed": not at_tail or before is not None,
        "log_kinds": kinds,
        "log_filtered": kinds != set(LOG_KINDS),
        "show_param": ",".join(sorted(kinds)) if kinds != set(LOG_KINDS) else "",
        # Carried by "Load earlier" and match links so they keep the chips' choice.
        "show_query": "".join(f"&show={k}" for k in sorted(kinds)) + "&show="
        if kinds != set(LOG_KINDS)
        else "",
        "chips": [(k, LOG_KIND_LABELS[k], k in kinds) for k in LOG_KINDS],
        "q": q,
        "matches": len(matches),
        "match": match,
        "match_capped": len(matches) == MATCH_LIMIT,
        "target": around,
    }


@login_required
@require_GET
def run_detail(request, project: str, run_id: str):
    access = get_access(request, project)
    run = get_object_or_404(Run.objects.defer("logs"), pk=run_id, project=access.project)
    context = _run_context(access, run)
    context.update(_log_window(request, run))
    if request.htmx and "before" in request.GET and "q" not in request.GET:
        # "Load earlier": the button is replaced by an older window (and a new button).
        return render_blocks(request, "runs/detail.html", ["earlier", "events"], context)
    if request.htmx and request.htmx.target == "log-card":
        # Search, filter chips, match navigation: only the log card is redrawn.
        return render_blocks(request, "runs/detail.html", ["log"], context)
    context["progress"] = _latest_progress(run, context["events"])
    if run.kind == Run.Kind.WORKFLOW:
        context.update(run_panel_context(access, run), live=context["live"])
    return render(request, "runs/detail.html", context)


@login_required
@require_GET
def run_events(request, project: str, run_id: str):
    """The live log's poll: events after ?after=<event id>. A quiet run costs one indexed query
    (beyond the session and membership look-ups every request pays) and answers 204."""
    access = get_access(request, project)
    if not is_run_id(run_id):
        raise Http404("no such run")
    after = _event_position(request, "after") or 0
    events = list(
        RunEvent.objects.filter(run_id=run_id, run__project=access.project, id__gt=after).order_by(
            "id"
        )[:POLL_LIMIT]
    )
    if not events:
        return HttpResponse(status=204)
    # Every event counts for the status and progress; the log shows the chips' kinds only.
    kinds = {k for k in request.GET.get("show", "").split(",") if k in LOG_KINDS} or set(LOG_KINDS)
    quiet = bool(request.GET.get("quiet"))
    blocks = ["events"]
    context = {
        "access": access,
        "project": access.project,
        "run": Run(pk=run_id),
        "events": [] if quiet else [e for e in events if event_kind(e) in kinds],
        "last_event_id": events[-1].pk,
        "live": not quiet,
        "watch": quiet,
        "watch_after": events[-1].pk,
        "catching_up": len(events) == POLL_LIMIT,
        "show_param": ",".join(sorted(kinds)) if kinds != set(LOG_KINDS) else "",
        "oob": True,
    }
    progress = next((e.payload for e in reversed(events) if e.event_type == "progress"), None)
    if progress is not None:
        context["progress"] = progress
        blocks.append("progress")
    if any(e.event_type in STATUS_EVENTS for e in events):
        # The status moved: redraw the header, the result and the log's tools too (one more
        # query, only now). A finished run's page settles: final progress, download, raw log.
        run = get_object_or_404(Run.objects.defer("logs"), pk=run_id, project=access.project)
        context.update(
            _run_context(access, run),
            live=not run.is_terminal and not quiet,
            watch=quiet and not run.is_terminal,
            oob=True,
        )
        if run.is_terminal:
            context["progress"] = progress or _latest_progress(run, [])
            if context["progress"] is not None and "progress" not in blocks:
                blocks.append("progress")
        blocks += ["summary", "result", "log_tools", "details"]
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
    """The run's stdout+stderr as plain text, ANSI codes stripped. `?download=1` saves it as a
    file. Streamed from the run's log events: the whole log, also while it runs (the stored
    `logs` column keeps only the newest STUDIO_MAX_LOG_BYTES). A run whose events were pruned
    falls back to that stored text."""
    access = get_access(request, project)
    run = get_object_or_404(
        Run.objects.only("id", "project_id", "status", "logs"), pk=run_id, project=access.project
    )
    pruned = (
        run.is_terminal
        and run.logs
        and not RunEvent.objects.filter(run_id=run.pk, event_type="log").exists()
    )
    if pruned:
        response = HttpResponse(strip_ansi(run.logs), content_type="text/plain; charset=utf-8")
    else:
        response = StreamingHttpResponse(
            _log_lines(run.pk), content_type="text/plain; charset=utf-8"
        )
    response["X-Content-Type-Options"] = "nosniff"
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="{run.pk}.log"'
    return response


def _log_lines(run_id: str):
    """Every log line of a run from its events, in batches (keyset on id), ANSI stripped."""
    last = 0
    while True:
        batch = list(
            RunEvent.objects.filter(run_id=run_id, event_type="log", id__gt=last)
            .order_by("id")
            .values_list("id", "payload")[:DOWNLOAD_BATCH]
        )
        if not batch:
            return
        last = batch[-1][0]
        yield "".join(
            strip_ansi(str(p.get("line", "") if isinstance(p, dict) else "")) + "\n"
            for _, p in batch
        )
