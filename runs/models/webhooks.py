"""Inbound webhooks (with their recorded deliveries) and outbound run notifications.

Secrets are stored encrypted (runs.signing) because they must be recoverable to check or make a
signature. A rotation keeps the previous secret valid until `previous_secret_expires_at`.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

from django.db import models
from django.utils import timezone

from .. import signing


class WebhookScheme(models.TextChoices):
    STUDIO = "studio", "Studio signature (X-Studio-Signature)"
    GITHUB = "github", "GitHub signature (X-Hub-Signature-256)"
    HEADER = "header", "Shared secret in a header"


class Webhook(models.Model):
    """A URL that starts a run of `target` when a verified request arrives."""

    Scheme = WebhookScheme

    class PayloadTo(models.TextChoices):
        CONFIG = "config", "config"
        INPUT = "input", "input"

    class Source(models.TextChoices):
        API = "api", "API, dashboard or admin"
        FILE = "file", "File under webhooks/"

    project = models.ForeignKey(
        "runs.Project", on_delete=models.CASCADE, related_name="webhooks", db_index=False
    )
    slug = models.SlugField(max_length=64, help_text="The webhook's id, part of its URL.")
    name = models.CharField(max_length=200, blank=True, default="")
    description = models.TextField(blank=True, default="")
    target = models.CharField(max_length=255)
    event_filter = models.JSONField(null=True, blank=True)
    payload_to = models.CharField(
        max_length=16, choices=PayloadTo.choices, default=PayloadTo.CONFIG
    )
    enabled = models.BooleanField(default=True)
    scheme = models.CharField(max_length=16, choices=WebhookScheme.choices, default="studio")
    header_name = models.CharField(max_length=100, blank=True, default="")
    # Encrypted (runs.signing); empty for file-defined webhooks, whose secret is `secret_env`.
    secret_encrypted = models.TextField(blank=True, default="", editable=False)
    previous_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    secret_env = models.CharField(max_length=200, blank=True, default="")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    path = models.CharField(max_length=500, blank=True, default="")
    # Verification failures beyond the recording rate limit are only counted.
    unrecorded_failures = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(fields=["project", "slug"], name="webhook_unique_slug")
        ]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.slug}"

    # -- secrets -------------------------------------------------------------------------------

    def set_secret(self, plain: str | None = None) -> str:
        """Replace the secret at once (no overlap) and return it; call save() after."""
        plain = plain or signing.new_secret()
        self.secret_encrypted = signing.encrypt(plain)
        self.previous_secret_encrypted = ""
        self.previous_secret_expires_at = None
        return plain

    def rotate_secret(self, overlap: timedelta = timedelta(hours=24)) -> str:
        """A new secret; the current one keeps verifying for `overlap`. Saved; returns it."""
        plain = signing.new_secret()
        if overlap.total_seconds() > 0 and self.secret_encrypted:
            self.previous_secret_encrypted = self.secret_encrypted
            self.previous_secret_expires_at = timezone.now() + overlap
        else:
            self.previous_secret_encrypted = ""
            self.previous_secret_expires_at = None
        self.secret_encrypted = signing.encrypt(plain)
        self.save(
            update_fields=[
                "secret_encrypted",
                "previous_secret_encrypted",
                "previous_secret_expires_at",
                "updated_at",
            ]
        )
        return plain

    def verifying_secrets(self, now=None) -> list[str]:
        """Every secret that verifies a request now: the current one, the previous one during a
        rotation's overlap; for a file-defined webhook, the value of its environment variable."""
        if self.source == self.Source.FILE:
            value = os.environ.get(self.secret_env, "") if self.secret_env else ""
            return [value] if value else []
        found = []
        current = signing.decrypt(self.secret_encrypted)
        if current:
            found.append(current)
        now = now or timezone.now()
        if self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            previous = signing.decrypt(self.previous_secret_encrypted)
            if previous:
                found.append(previous)
        return found

    @property
    def in_rotation(self) -> bool:
        return bool(
            self.previous_secret_expires_at and self.previous_secret_expires_at > timezone.now()
        )

    @property
    def has_secret(self) -> bool:
        return bool(self.verifying_secrets())


class WebhookDelivery(models.Model):
    """One request to a webhook's URL, whatever became of it."""

    class Verification(models.TextChoices):
        VERIFIED = "verified", "Verified"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Not checked"  # re-delivery from the dashboard, or the CLI

    class FilterResult(models.TextChoices):
        MATCHED = "matched", "Matched"
        FILTERED = "filtered", "Filtered out"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    project = models.ForeignKey(
        "runs.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    received_at = models.DateTimeField(default=timezone.now)
    verification = models.CharField(max_length=16, choices=Verification.choices)
    filter_result = models.CharField(
        max_length=16, choices=FilterResult.choices, null=True, blank=True
    )
    status_code = models.PositiveSmallIntegerField()
    message = models.CharField(max_length=500, blank=True, default="")
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    duplicate = models.BooleanField(default=False)
    delivery_id = models.CharField(max_length=200, blank=True, default="")
    event = models.CharField(max_length=200, blank=True, default="")
    content_type = models.CharField(max_length=200, blank=True, default="")
    headers = models.JSONField(default=dict, blank=True)
    # Only for verified deliveries, up to STUDIO_WEBHOOK_BODY_CAP bytes.
    body = models.TextField(null=True, blank=True)
    body_truncated = models.BooleanField(default=False)
    body_size = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["webhook", "-received_at"], name="delivery_webhook_newest"),
            models.Index(fields=["received_at"], name="delivery_received"),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} {self.received_at:%Y-%m-%d %H:%M:%S} {self.status_code}"

    @property
    def can_redeliver(self) -> bool:
        return self.body is not None and not self.body_truncated


class NotificationTarget(models.Model):
    """Where a project's run outcomes are sent: a signed JSON POST or a Slack message."""

    class Kind(models.TextChoices):
        JSON = "json", "JSON (signed POST)"
        SLACK = "slack", "Slack incoming webhook"

    OUTCOMES = ("completed", "failed", "timed_out", "cancelled", "recovered")
    FAILING_AFTER = 3  # consecutive failed attempts before the dashboard flags the target

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(
        "runs.Project", on_delete=models.CASCADE, related_name="notification_targets"
    )
    name = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.JSON)
    url = models.URLField(max_length=2000)
    targets = models.JSONField(default=list, blank=True)
    outcomes = models.JSONField(default=list, blank=True)
    include_children = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    secret_encrypted = models.TextField(blank=True, default="", editable=False)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name or self.url

    def set_secret(self) -> str:
        plain = signing.new_secret()
        self.secret_encrypted = signing.encrypt(plain)
        return plain

    @property
    def secret(self) -> str | None:
        return signing.decrypt(self.secret_encrypted)

    @property
    def is_failing(self) -> bool:
        return self.consecutive_failures >= self.FAILING_AFTER


class NotificationOutbox(models.Model):
    """One notification to send: written in the transaction that ended the run, sent later."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        GAVE_UP = "gave_up", "Gave up"

    id = models.BigAutoField(primary_key=True)
    delivery_id = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    target = models.ForeignKey(NotificationTarget, on_delete=models.CASCADE, related_name="outbox")
    project = models.ForeignKey(
        "runs.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    event = models.CharField(max_length=64)  # run.completed | run.failed | run.cancelled
    outcomes = models.JSONField(default=list)
    payload = models.JSONField(default=dict)
    test = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["target", "state", "id"], name="outbox_target_order"),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.target_id} ({self.state})"


class NotificationAttempt(models.Model):
    outbox = models.ForeignKey(NotificationOutbox, on_delete=models.CASCADE, related_name="tries")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.outbox_id} {self.attempted_at:%H:%M:%S} {self.status_code or self.error}"
