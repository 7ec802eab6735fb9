"""The landing redirect and a project's overview: the last 24 hours at a glance."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.db.models.fields.json import KT
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from runs.models import Run, RunStatus

from ..charts import build_chart, hourly_counts, status_totals
from ..permissions import get_access, projects_for

FAILURE_DAYS = 7  # the overview groups the failures of this many days
FAILURE_SCAN = 1000  # ... looking at no more than this many of the newest failed runs
FAILURE_GROUPS = 8

LIST_FIELDS = (
    "id",
    "project_id",
    "status",
    "target",
    "name",
    "created_at",
    "completed_at",
    "error",
    "cancel_requested_at",
)


@login_required
@require_GET
def home(request):
    projects = projects_for(request.user)
    last = request.session.get("dashboard_project")
    for project, _ in projects:
        if project.slug == last:
            return redirect("dashboard:overview", project=project.slug)
    if projects:
        return redirect("dashboard:overview", project=projects[0][0].slug)
    return render(request, "overview/no_projects.html", {"projects": []})


@login_required
@require_GET
def overview(request, project: str):
    access = get_access(request, project)
    now = timezone.now()
    since = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=23)
    counts = hourly_counts(access.project, since)
    failure_groups = _failure_groups(access.project, now - dt.timedelta(days=FAILURE_DAYS))
    totals = status_totals(counts)
    has_runs = (
        bool(sum(n for _, _, n in totals)) or Run.objects.filter(project=access.project).exists()
    )
    return render(
        request,
        "overview/overview.html",
        {
            "access": access,
            "project": access.project,
            "since": since,
            "totals": totals,
            "total": sum(n for _, _, n in totals),
            "chart": build_chart(counts, now),
            "failure_groups": failure_groups,
            "failure_days": FAILURE_DAYS,
            "has_runs": has_runs,
            "nav": "overview",
        },
    )


def _failure_groups(project, since) -> list[dict]:
    """Recent failures grouped by error message: how often, which targets, the latest run.
    Grouped in Python over a bounded slice of the newest failures (portable, and cheap with
    the (project, status, -created_at) index)."""
    rows = (
        Run.objects.filter(project=project, status=RunStatus.FAILED, created_at__gte=since)
        .order_by("-created_at", "-id")
        .annotate(message=KT("error__message"))
        .values("id", "target", "name", "created_at", "message")[:FAILURE_SCAN]
    )
    groups: dict[str, dict] = {}
    for row in rows:
        message = (row["message"] or "Failed without a message").strip()
        key = message[:300]
        group = groups.get(key)
        if group is None:
            group = groups[key] = {
                "message": message,
                "count": 0,
                "targets": [],
                "latest": row,
            }
        group["count"] += 1
        if row["target"] not in group["targets"]:
            group["targets"].append(row["target"])
    ordered = sorted(
        groups.values(), key=lambda g: (-g["count"], -g["latest"]["created_at"].timestamp())
    )
    return ordered[:FAILURE_GROUPS]
