"""The landing redirect and a project's overview: the last 24 hours at a glance."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max, TextField, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from runs.models import Run, RunStatus, Schedule

from ..charts import build_chart, hourly_counts, status_totals
from ..permissions import get_access, projects_for

FAILURE_DAYS = 7  # the overview groups the failures of this many days
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
            "upcoming": Schedule.objects.live()
            .filter(project=access.project, enabled=True, next_fire_at__isnull=False)
            .order_by("next_fire_at")[:5],
            "nav": "overview",
        },
    )


def _failure_groups(project, since) -> list[dict]:
    """Recent failures grouped by error message: how many, which targets, when last. Two
    aggregate queries over the (project, status, -created_at) index, whatever the volume."""
    failed = Run.objects.filter(
        project=project, status=RunStatus.FAILED, created_at__gte=since
    ).annotate(message=Coalesce(KT("error__message"), Value(""), output_field=TextField()))
    top = list(
        failed.values("message")
        .annotate(count=Count("id"), latest=Max("created_at"))
        .order_by("-count", "-latest")[:FAILURE_GROUPS]
    )
    targets: dict[str, list[str]] = {}
    for row in (
        failed.filter(message__in=[g["message"] for g in top])
        .values("message", "target")
        .annotate(n=Count("id"))
        .order_by("message", "-n")
    ):
        targets.setdefault(row["message"], []).append(row["target"])
    # The newest run of each group, to open it: one query over the groups' newest rows (a group
    # whose newest run is not among them links to its runs list only).
    latest: dict[str, str] = {}
    for row in (
        failed.filter(message__in=[g["message"] for g in top])
        .order_by("-created_at", "-id")
        .values("id", "message")[: FAILURE_GROUPS * 25]
    ):
        latest.setdefault(row["message"], row["id"])
    return [
        {
            "message": g["message"] or "Failed without a message",
            "search": g["message"][:200],
            "count": g["count"],
            "latest": g["latest"],
            "targets": targets.get(g["message"], []),
            "latest_id": latest.get(g["message"]),
        }
        for g in top
    ]
