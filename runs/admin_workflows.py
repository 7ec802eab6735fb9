"""Admin for workflow runs: their steps (with links to each step's child runs) and approvals,
shown inline on a workflow run's admin page. Read-only: steps move only through advance()."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .models import WorkflowApproval, WorkflowStep


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class WorkflowStepInline(_ReadOnlyInline):
    model = WorkflowStep
    fields = [
        "step_id",
        "kind",
        "status",
        "child_runs",
        "started_at",
        "completed_at",
        "error",
        "reused_from_run_id",
    ]
    readonly_fields = fields
    ordering = ["position"]

    @admin.display(description="Child runs")
    def child_runs(self, step: WorkflowStep) -> str:
        ids = step.child_run_ids[:50]
        links = format_html_join(
            " ",
            '<a href="{}">{}</a>',
            ((reverse("admin:runs_run_change", args=[i]), i) for i in ids),
        )
        more = len(step.child_run_ids) - len(ids)
        return format_html("{}{}", links, f" and {more} more" if more > 0 else "")


class WorkflowApprovalInline(_ReadOnlyInline):
    model = WorkflowApproval
    fields = [
        "step_id",
        "message",
        "status",
        "requested_at",
        "expires_at",
        "decided_by",
        "decided_at",
        "comment",
    ]
    readonly_fields = fields


WORKFLOW_INLINES = [WorkflowStepInline, WorkflowApprovalInline]
