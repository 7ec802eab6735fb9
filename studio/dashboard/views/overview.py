"""The landing redirect and a project's overview: the last 24 hours at a glance."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from runs.models import Run, RunStatus, Schedule

from ..charts import build_chart, hourly_counts, status_totals
from ..permissions import get_access, projects_for

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
    failures = list(
        Run.objects.filter(project=access.project, status=RunStatus.FAILED)
        .only(*LIST_FIELDS)
        .order_by("-created_at", "-id")[:6]
    )
    totals = status_totals(counts)
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
            "failures": failures,
            "upcoming": Schedule.objects.live()
            .filter(project=access.project, enabled=True, next_fire_at__isnull=False)
            .order_by("next_fire_at")[:5],
            "nav": "overview",
        },
    )
