"""The Workers page: live workers with the runs they hold, recently lost ones, and draining.

Superusers see every run; a project admin sees the workers (shared by all projects) but only
their own project's runs on them. Only a superuser may ask a worker to drain.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from runs.models import Run, RunStatus, Worker

from ..permissions import Role, get_access
from ..rendering import render_blocks

RECENTLY = dt.timedelta(hours=24)


@login_required
@require_GET
def workers(request, project: str):
    access = get_access(request, project, Role.ADMIN)
    context = {
        "access": access,
        "project": access.project,
        "nav": "workers",
        **_workers_context(access),
    }
    if request.htmx:
        return render_blocks(request, "workers/workers.html", ["live", "lost"], context)
    return render(request, "workers/workers.html", context)


def _workers_context(access) -> dict:
    now = timezone.now()
    silent_after = dt.timedelta(seconds=2 * settings.STUDIO_HEARTBEAT_SECONDS)
    live = list(Worker.objects.alive().order_by("host", "pid"))
    held = Run.objects.filter(status=RunStatus.RUNNING, worker__isnull=False).select_related(
        "project"
    )
    if not access.superuser:
        held = held.filter(project=access.project)
    held = list(held.only("id", "target", "name", "worker", "started_at", "project__slug"))
    for worker in live:
        worker.runs = [run for run in held if run.worker.startswith(worker.run_prefix)]
        worker.silent = now - worker.heartbeat_at > silent_after
    lost = list(
        Worker.objects.filter(state=Worker.State.LOST, stopped_at__gte=now - RECENTLY).order_by(
            "-stopped_at"
        )[:50]
    )
    for worker in lost:
        outcome = worker.outcome or {}
        if access.superuser:
            counts = outcome.get("total", {})
        else:
            counts = outcome.get("by_project", {}).get(str(access.project.pk), {})
        worker.outcome_text = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    return {"live": live, "lost": lost, "superuser": access.superuser}


@login_required
@require_POST
def drain(request, project: str, worker_id: int):
    access = get_access(request, project, Role.ADMIN)
    if not access.superuser:
        raise PermissionDenied("only a superuser may drain a worker")
    worker = get_object_or_404(Worker.objects.alive(), pk=worker_id)
    if Worker.objects.filter(pk=worker.pk, drain_requested_at__isnull=True).update(
        drain_requested_at=timezone.now(), drain_requested_by=request.user.get_username()
    ):
        messages.success(
            request,
            f"Worker {worker.name} will take no new runs, finish the ones it holds, then exit.",
        )
    else:
        messages.info(request, f"Worker {worker.name} was already asked to drain.")
    return redirect("dashboard:workers", project=access.project.slug)
