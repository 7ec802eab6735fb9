"""Schedules (definitions that create runs later) and their ledger of slots."""

from __future__ import annotations

from django.db import models
from django.utils import timezone as dj_timezone

from ..schedules.spec import Timing


class ScheduleQuerySet(models.QuerySet):
    def live(self):
        """Schedules that may still fire: not retired."""
        return self.filter(done_at__isnull=True)

    def due(self, now):
        return self.live().filter(enabled=True, next_fire_at__lte=now)


class Schedule(models.Model):
    class Policy(models.TextChoices):
        ALLOW = "Allow", "Allow"
        FORBID = "Forbid", "Forbid"
        REPLACE = "Replace", "Replace"
        BUFFER_ONE = "BufferOne", "BufferOne"

    class CatchUp(models.TextChoices):
        LATEST = "latest", "latest"
        NONE = "none", "none"
        ALL = "all", "all"

    class Source(models.TextChoices):
        API = "api", "api"
        FILE = "file", "file"

    project = models.ForeignKey("runs.Project", on_delete=models.CASCADE, related_name="schedules")
    # The client's id for it (a slug, unique in the project); runs carry it as schedule_id.
    slug = models.CharField(max_length=100)
    name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    target = models.CharField(max_length=255)
    input = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    backoff_limit = models.PositiveIntegerField(null=True, blank=True)
    cron = models.CharField(max_length=200, null=True, blank=True)
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    run_at = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    max_runs = models.PositiveIntegerField(null=True, blank=True)
    concurrency_policy = models.CharField(
        max_length=16, choices=Policy.choices, default=Policy.ALLOW
    )
    catch_up = models.CharField(max_length=8, choices=CatchUp.choices, default=CatchUp.LATEST)
    starting_deadline_seconds = models.PositiveIntegerField(default=3600)
    enabled = models.BooleanField(default=True)
    pause_note = models.CharField(max_length=500, blank=True, default="")
    paused_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    source_path = models.CharField(max_length=500, blank=True, default="")
    # Why the file behind a file schedule no longer loads (the stored copy keeps firing).
    file_error = models.TextField(blank=True, default="")
    # Why the last slot could not fire (cleared by the next run that fires, or by an edit).
    fire_error = models.TextField(blank=True, default="")
    next_fire_at = models.DateTimeField(null=True, blank=True)
    # A BufferOne slot waiting for the active run to end.
    buffered_slot = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_run_id = models.CharField(max_length=40, null=True, blank=True)
    run_count = models.PositiveIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)
    done_reason = models.CharField(max_length=200, blank=True, default="")
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["project", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["project", "slug"], name="schedule_unique_slug")
        ]
        indexes = [models.Index(fields=["enabled", "next_fire_at"], name="schedule_due")]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.slug}"

    @property
    def timing(self) -> Timing:
        return Timing(
            timezone=self.timezone,
            cron=self.cron,
            interval_seconds=self.interval_seconds,
            run_at=self.run_at,
            start_at=self.start_at,
            end_at=self.end_at,
            # Whole seconds: an interval's slots land on round times (…:18, …:20), not …:18.839.
            anchor=self.created_at.replace(microsecond=0),
        )

    @property
    def when(self) -> str:
        """How it fires, in a few words: the cron, the interval or the one time."""
        if self.cron:
            return f"cron {self.cron} ({self.timezone})"
        if self.interval_seconds:
            return f"every {self.interval_seconds}s"
        if self.run_at:
            return f"once at {self.run_at.isoformat()}"
        return "never"

    @property
    def is_done(self) -> bool:
        return self.done_at is not None

    @property
    def is_file(self) -> bool:
        return self.source == self.Source.FILE


class ScheduleOccurrence(models.Model):
    """One slot of a schedule and what became of it. Unique per (schedule, slot): a slot can
    never fire twice, whichever worker or crash gets there first."""

    class Outcome(models.TextChoices):
        FIRED = "fired", "fired"
        SKIPPED_OVERLAP = "skipped_overlap", "skipped (overlap)"
        BUFFERED = "buffered", "buffered"
        MISSED = "missed", "missed"
        FAILED_TO_FIRE = "failed_to_fire", "failed to fire"

    id = models.BigAutoField(primary_key=True)
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="occurrences")
    slot = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    run_id = models.CharField(max_length=40, null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True, default="")
    # A span of slots summarised in one row (a pause, a long downtime): how many, from `slot`.
    count = models.PositiveIntegerField(default=1)
    recorded_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["-slot", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "slot"], name="occurrence_unique_slot")
        ]
        indexes = [models.Index(fields=["recorded_at"], name="occurrence_recorded")]

    def __str__(self) -> str:
        return f"{self.schedule_id}@{self.slot.isoformat()} {self.outcome}"
