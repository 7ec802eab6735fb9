"""Operating Studio: the worker registry, bulk operations on runs, saved run-list filters."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class WorkerQuerySet(models.QuerySet):
    def alive(self):
        """Registered and not known to have stopped (a paused or silently dead one included)."""
        return self.filter(state__in=(Worker.State.ALIVE, Worker.State.DRAINING))


class Worker(models.Model):
    """One `run_huey` process, registered when it starts, idle or not.

    `name` is the prefix of `Run.worker` for the runs it executes (`<name>:<thread>`)."""

    class State(models.TextChoices):
        ALIVE = "alive", "Alive"
        DRAINING = "draining", "Draining"
        STOPPED = "stopped", "Stopped"  # exited cleanly
        LOST = "lost", "Lost"  # died; its runs were settled by a sweeper

    name = models.CharField(max_length=200, unique=True)
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    # Tells a reused pid from the original on the same host (/proc/<pid>/stat start time).
    process_started = models.CharField(max_length=40, blank=True, default="")
    version = models.CharField(max_length=40, blank=True, default="")
    capacity = models.PositiveIntegerField(default=0)
    # Not `status`: that word belongs to runs, and only the lifecycle writes it.
    state = models.CharField(max_length=16, choices=State.choices, default=State.ALIVE)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)
    drain_requested_at = models.DateTimeField(null=True, blank=True)
    drain_requested_by = models.CharField(max_length=150, blank=True, default="")
    # What happened to its runs when it was lost: {"total": {"retried": n, "failed": n,
    # "cancelled": n}, "by_project": {<project id>: {...}}}.
    outcome = models.JSONField(default=dict, blank=True)

    objects = WorkerQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["state", "heartbeat_at"], name="worker_state_beat")]

    def __str__(self) -> str:
        return self.name

    @property
    def run_prefix(self) -> str:
        return f"{self.name}:"


class Operation(models.Model):
    """A bulk cancel or re-run, processed in the background in batches by the workers."""

    class Kind(models.TextChoices):
        CANCEL = "cancel", "Cancel"
        RERUN = "rerun", "Re-run"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("runs.Project", on_delete=models.CASCADE, related_name="operations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    # Either explicit run ids, or a filter resolved into ids when the operation is created (so
    # that runs created afterwards are not swept in, and the count shown is the count done).
    run_ids = models.JSONField(default=list, blank=True)
    filter = models.JSONField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    position = models.PositiveIntegerField(default=0)  # how far into run_ids the batches got
    processed = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # Re-runs: the new run ids; failures: [{run_id, message}] (bounded).
    result = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "updated_at"], name="operation_state_updated")]

    def __str__(self) -> str:
        return f"{self.kind} {self.processed}/{self.total}"


class SavedFilter(models.Model):
    """A named runs-list filter (the query string of the list), per user and project."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_filters"
    )
    project = models.ForeignKey(
        "runs.Project", on_delete=models.CASCADE, related_name="saved_filters"
    )
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=2000, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "project", "name"], name="savedfilter_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name
