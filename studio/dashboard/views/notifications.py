"""Run notification targets of a project: members read, admins manage and send a test."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from runs import notify
from runs.models import NotificationAttempt, NotificationTarget

from ..permissions import Role, get_access
from ..webhook_forms import NotificationForm

SECRET_SESSION_KEY = "notification-secret:{pk}"
ATTEMPTS_SHOWN = 50


def _target(access, notification_id: str) -> NotificationTarget:
    try:
        pk = uuid.UUID(notification_id)
    except ValueError:
        raise Http404("no such target") from None
    target = NotificationTarget.objects.filter(project=access.project, pk=pk).first()
    if target is None:
        raise Http404("no such target")
    return target


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request, project: str):
    access = get_access(request, project, Role.ADMIN if request.method == "POST" else Role.VIEWER)
    form = NotificationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        target = NotificationTarget(project=access.project, **form.cleaned_data)
        if target.kind == NotificationTarget.Kind.JSON:
            request.session[SECRET_SESSION_KEY.format(pk=target.pk)] = target.set_secret()
        target.save()
        messages.success(request, "Notification target added.")
        return redirect(
            "dashboard:notification", project=access.project.slug, notification_id=target.pk
        )
    return render(
        request,
        "notifications/notifications.html",
        {
            "access": access,
            "project": access.project,
            "targets": NotificationTarget.objects.filter(project=access.project),
            "form": form,
            "nav": "notifications",
        },
    )


@login_required
@require_GET
def notification_detail(request, project: str, notification_id: str):
    access = get_access(request, project)
    target = _target(access, notification_id)
    secret = None
    if access.can_admin:
        secret = request.session.pop(SECRET_SESSION_KEY.format(pk=target.pk), None)
    attempts = (
        NotificationAttempt.objects.filter(outbox__target=target)
        .select_related("outbox")
        .order_by("-attempted_at", "-id")[:ATTEMPTS_SHOWN]
    )
    return render(
        request,
        "notifications/detail.html",
        {
            "access": access,
            "project": access.project,
            "target": target,
            "secret": secret,
            "attempts": attempts,
            "pending": target.outbox.filter(state="pending").count(),
            "form": NotificationForm(instance=target) if access.can_admin else None,
            "nav": "notifications",
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def notification_edit(request, project: str, notification_id: str):
    access = get_access(request, project, Role.ADMIN)
    target = _target(access, notification_id)
    form = NotificationForm(request.POST or None, instance=target)
    if request.method == "POST" and form.is_valid():
        for key, value in form.cleaned_data.items():
            if key != "kind":
                setattr(target, key, value)
        target.save()
        messages.success(request, "Notification target saved.")
        return redirect(
            "dashboard:notification", project=access.project.slug, notification_id=target.pk
        )
    return render(
        request,
        "notifications/edit.html",
        {
            "access": access,
            "project": access.project,
            "target": target,
            "form": form,
            "nav": "notifications",
        },
    )


@login_required
@require_POST
def notification_test(request, project: str, notification_id: str):
    """Send a test notification now (and leave it in the outbox for retries if it fails)."""
    access = get_access(request, project, Role.ADMIN)
    target = _target(access, notification_id)
    outbox = notify.queue_test(target)
    if notify.attempt(outbox):
        messages.success(request, "Test notification delivered.")
    else:
        outbox.refresh_from_db()
        messages.error(
            request, f"Test notification failed: {outbox.last_error}. Workers will retry it."
        )
    return redirect(
        "dashboard:notification", project=access.project.slug, notification_id=target.pk
    )


@login_required
@require_POST
def notification_delete(request, project: str, notification_id: str):
    access = get_access(request, project, Role.ADMIN)
    _target(access, notification_id).delete()
    messages.success(request, "Notification target deleted.")
    return redirect("dashboard:notifications", project=access.project.slug)
