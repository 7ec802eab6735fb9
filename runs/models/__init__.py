"""Studio's data: projects, their members and API tokens, runs and run events."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.dispatch import Signal
from django.utils import timezone

from .ids import RUN_ID_RE, is_run_id, new_run_id  # noqa: F401 (new_run_id: migration 0001)
from .queries import RunQuerySet


class Project(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @classmethod
    def by_reference(cls, ref: str) -> models.QuerySet[Project]:
        """Projects matching a slug or a UUID (API and CLI accept either)."""
        try:
            return cls.objects.filter(pk=uuid.UUID(str(ref)))
        except ValueError:
            return cls.objects.filter(slug=ref)


class Membership(models.Model):
    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        OPERATOR = "operator", "Operator"
        ADMIN = "admin", "Admin"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


TOKEN_PREFIX = "stu_"


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Sent with `token` (the ApiToken) when revoke() revoked it: the API forgets its cached check.
token_revoked = Signal()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)

    def authenticate(self, token: str) -> ApiToken | None:
        """The active token for this secret, or None. Compared in constant time."""
        if not token.startswith(TOKEN_PREFIX) or len(token) < 20:
            return None
        lookup = token[: len(TOKEN_PREFIX) + ApiToken.LOOKUP_CHARS]
        candidate = self.active().select_related("project").filter(prefix=lookup).first()
        if candidate is None or not hmac.compare_digest(candidate.secret_hash, hash_secret(token)):
            return None
        return candidate


class ApiToken(models.Model):
    """A project API token. Only a prefix (to find it) and a hash of the secret are stored."""

    LOOKUP_CHARS = 8

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        READ_WRITE = "read_write", "Read and write"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.READ_WRITE)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, project: Project, name: str, *, read_only: bool = False, created_by: str = ""):
        """Create a token; return (token, secret). The secret is never retrievable again."""
        lookup = secrets.token_hex(cls.LOOKUP_CHARS // 2)
        secret = f"{TOKEN_PREFIX}{lookup}{secrets.token_urlsafe(32)}"
        token = cls.objects.create(
            project=project,
            name=name,
            prefix=secret[: len(TOKEN_PREFIX) + cls.LOOKUP_CHARS],
            secret_hash=hash_secret(secret),
            scope=cls.Scope.READ if read_only else cls.Scope.READ_WRITE,
            created_by=created_by,
        )
        return token, secret

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def can_write(self) -> bool:
        return self.scope == self.Scope.READ_WRITE

    def touch(self) -> None:
        """Record use, at most once a minute per token to keep reads cheap."""
        now = timezone.now()
        if self.last_used_at is None or (now - self.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now

    def revoke(self) -> None:
        ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        self.refresh_from_db(fields=["revoked_at"])
        token_revoked.send(sender=ApiToken, token=self)


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_STATUSES = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
ACTIVE_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING)


class Run(models.Model):
    class Kind(models.TextChoices):
        TASK = "task", "Task"
        WORKFLOW = "workflow", "Workflow"

    Status = RunStatus

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual"
        SCHEDULE = "schedule", "Schedule"
        WEBHOOK = "webhook", "Webhook"
        API = "api", "API"

    id = models.CharField(primary_key=True, max_length=40, default=new_run_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.TASK)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    target = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True, default="")
    workflow_id = models.CharField(max_length=255, null=True, blank=True)
    parent_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="child_runs"
    )
    root_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="descendant_runs"
    )
    schedule_id = models.CharField(max_length=255, null=True, blank=True)
    batch_id = models.CharField(max_length=255, null=True, blank=True)
    public_id = models.CharField(max_length=255, null=True, blank=True)
    start_mode = models.CharField(max_length=32, null=True, blank=True)
    # Veryfront's runtime target; Studio has one runtime, so this is null or "main_branch".
    runtime_target_kind = models.CharField(max_length=32, null=True, blank=True)
    input = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    output = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)
    logs = models.TextField(blank=True, default="")
    artifacts = models.JSONField(default=list, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    backoff_limit = models.PositiveIntegerField(default=0)
    attempt = models.PositiveIntegerField(default=0)
    trigger_kind = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    trigger_id = models.CharField(max_length=255, null=True, blank=True)
    created_by = models.CharField(max_length=150, null=True, blank=True)
    waiting_reason = models.CharField(max_length=64, null=True, blank=True)
    # Engine bookkeeping: who runs it, when it last proved alive, when a retry resumes.
    worker = models.CharField(max_length=200, null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    resume_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=500, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at", "-id"], name="run_project_newest"),
            models.Index(fields=["project", "status", "-created_at"], name="run_project_status"),
            models.Index(fields=["target", "status", "created_at"], name="run_target_status"),
            # The sweeper's scans: active runs by status and age.
            models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "public_id"],
                condition=models.Q(public_id__isnull=False),
                name="run_unique_public_id",
            )
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def task_id(self) -> str | None:
        return self.target.removeprefix("task:") if self.target.startswith("task:") else None

    @property
    def cancelling(self) -> bool:
        return self.cancel_requested_at is not None and not self.is_terminal


class RunEvent(models.Model):
    """One entry of a run's event stream. `id` is the public, increasing `event_id`."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events", db_index=False)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "id"], name="runevent_run_id")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.id} {self.event_type}"


from .operations import Operation, SavedFilter, Worker  # noqa: E402, F401
from .schedules import Schedule, ScheduleOccurrence  # noqa: E402, F401
from .webhooks import (  # noqa: E402, F401
    NotificationAttempt,
    NotificationOutbox,
    NotificationTarget,
    Webhook,
    WebhookDelivery,
)
from .workflows import StepStatus, WorkflowApproval, WorkflowGraph, WorkflowSignal, WorkflowStep  # noqa: E402, F401
