"""Workflow state: one row per step of a workflow run, its approvals, and the signals it got."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


STEP_ENDED = (StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED)


class WorkflowStep(models.Model):
    """The state of one step of one workflow run. Written only by the orchestrator's advance(),
    under the workflow run's lock."""

    Status = StepStatus

    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="steps")
    step_id = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)  # graph (topological) order
    kind = models.CharField(max_length=32)
    name = models.CharField(max_length=255, blank=True, default="")
    target = models.CharField(max_length=255, null=True, blank=True)
    depends_on = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    child_run_ids = models.JSONField(default=list, blank=True)
    # What the step's children were started with (for re-run-from-failed's reuse check).
    resolved_input = models.JSONField(null=True, blank=True)
    items = models.JSONField(null=True, blank=True)  # a map's resolved items
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    retrying = models.BooleanField(default=False)
    resume_at = models.DateTimeField(null=True, blank=True)  # sleep / approval / event deadline
    reused_from_run_id = models.CharField(max_length=40, null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step_id"], name="workflowstep_unique_step")
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.step_id} ({self.status})"

    @property
    def ended(self) -> bool:
        return self.status in STEP_ENDED


class WorkflowApproval(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="approvals")
    step_id = models.CharField(max_length=100)
    message = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["requested_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step_id"], name="workflowapproval_unique_step")
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.step_id} ({self.status})"


class WorkflowSignal(models.Model):
    """An event a client posted to a workflow run; a wait_for_event step consumes the first
    unconsumed one with its name."""

    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="signals")
    event = models.CharField(max_length=200)
    payload = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    consumed_by_step = models.CharField(max_length=100, null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "event", "id"], name="workflowsignal_run_event")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.event}"


class WorkflowGraph(models.Model):
    """The graph a workflow run was created with: editing the file never changes a run in
    flight."""

    run = models.OneToOneField(
        "runs.Run", on_delete=models.CASCADE, primary_key=True, related_name="workflow_graph"
    )
    graph = models.JSONField()

    def __str__(self) -> str:
        return f"graph of {self.run_id}"
