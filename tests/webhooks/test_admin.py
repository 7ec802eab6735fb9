"""The admin for webhooks and notifications: create issues a secret shown once, bad input is
refused with the field named, the lists open."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from runs.models import NotificationTarget, Webhook

from .conftest import make_webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789")
    client.force_login(user)
    return client


def test_creating_a_webhook_issues_a_secret_shown_once(admin_client, project):
    response = admin_client.post(
        reverse("admin:runs_webhook_add"),
        {
            "project": project.pk,
            "slug": "deploy",
            "name": "Deploy",
            "target": "task:sync-data",
            "payload_to": "config",
            "scheme": "studio",
            "enabled": "on",
            "event_filter": "null",
        },
        follow=True,
    )
    assert response.status_code == 200
    webhook = Webhook.objects.get()
    secret = webhook.verifying_secrets()[0]
    assert secret in response.content.decode()
    page = admin_client.get(reverse("admin:runs_webhook_change", args=[webhook.pk]))
    assert secret not in page.content.decode()
    assert webhook.secret_encrypted not in page.content.decode()


def test_a_bad_target_is_refused(admin_client, project):
    response = admin_client.post(
        reverse("admin:runs_webhook_add"),
        {
            "project": project.pk,
            "slug": "deploy",
            "target": "task:nope",
            "payload_to": "config",
            "scheme": "studio",
            "event_filter": "null",
        },
    )
    assert response.status_code == 200
    assert "no task with id" in response.content.decode()
    assert not Webhook.objects.exists()


def test_lists_open(admin_client, project):
    make_webhook(project)
    NotificationTarget.objects.create(project=project, url="https://x.example.com")
    for name in ("webhook", "webhookdelivery", "notificationtarget", "notificationoutbox"):
        assert admin_client.get(reverse(f"admin:runs_{name}_changelist")).status_code == 200
