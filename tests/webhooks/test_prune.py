"""Webhook deliveries are pruned with the runs (pruneruns)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from runs.models import Run, WebhookDelivery

from .conftest import make_webhook

pytestmark = pytest.mark.django_db


def delivery(webhook, *, run=None, days_ago=0, status=202):
    return WebhookDelivery.objects.create(
        webhook=webhook,
        project=webhook.project,
        verification="verified",
        status_code=status,
        run=run,
        received_at=timezone.now() - timedelta(days=days_ago),
        body="{}",
    )


def test_deliveries_go_with_their_runs_and_old_refusals_age_out(project):
    webhook = make_webhook(project)
    old_run = Run.objects.create(
        project=project,
        target="task:x",
        status="completed",
        completed_at=timezone.now() - timedelta(days=40),
    )
    kept_run = Run.objects.create(project=project, target="task:x", status="running")
    with_old_run = delivery(webhook, run=old_run, days_ago=40)
    refused_old = delivery(webhook, days_ago=40, status=401)
    refused_recent = delivery(webhook, days_ago=1, status=401)
    with_active_run = delivery(webhook, run=kept_run, days_ago=40)

    out = StringIO()
    call_command("pruneruns", "--older-than-days", "30", stdout=out)
    assert "Deleted 2 webhook delivery record(s)" in out.getvalue()
    left = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert left == {refused_recent.pk, with_active_run.pk}
    assert with_old_run.pk not in left and refused_old.pk not in left


def test_sent_notifications_go_with_their_runs_and_pending_ones_stay(project):
    from runs.models import NotificationOutbox, NotificationTarget

    target = NotificationTarget.objects.create(project=project, url="https://x.example.com")
    old_run = Run.objects.create(
        project=project,
        target="task:x",
        status="failed",
        completed_at=timezone.now() - timedelta(days=40),
    )
    sent = NotificationOutbox.objects.create(
        target=target, project=project, run=old_run, event="run.failed", state="delivered"
    )
    pending = NotificationOutbox.objects.create(
        target=target, project=project, run=old_run, event="run.failed", state="pending"
    )
    call_command("pruneruns", "--older-than-days", "30", stdout=StringIO())
    assert not NotificationOutbox.objects.filter(pk=sent.pk).exists()
    pending.refresh_from_db()
    assert pending.run_id is None  # kept, to be delivered; the run itself is gone
