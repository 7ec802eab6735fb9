"""Operators' view of Studio. Writes go through runs.service like everywhere else."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from . import service
from .admin_workflows import WORKFLOW_INLINES
from .models import ApiToken, Membership, Project, Run, RunEvent

EVENTS_SHOWN_ON_RUN = 200


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "id", "created_at"]
    search_fields = ["slug", "name", "id"]
    readonly_fields = ["id", "created_at", "updated_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "target",
        "name",
        "status",
        "trigger_kind",
        "attempt",
        "created_at",
        "duration_ms",
    ]
    list_filter = ["status", "kind", "trigger_kind", "project", "created_at"]
    search_fields = ["=id", "target", "name"]
    list_select_related = ["project"]
    show_full_result_count = False  # COUNT(*) over every run on each page view is the slow part
    date_hierarchy = "created_at"
    actions = ["cancel_runs", "rerun_runs"]
    readonly_fields = [f.name for f in Run._meta.fields] + ["recent_events"]

    def get_inlines(self, request, obj=None):
        # A workflow run shows its steps (and their child runs) and approvals.
        return WORKFLOW_INLINES if obj is not None and obj.kind == Run.Kind.WORKFLOW else []

    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "project",
                    "kind",
                    "status",
                    "target",
                    "name",
                    "attempt",
                    "trigger_kind",
                    "created_by",
                ]
            },
        ),
        ("Data", {"fields": ["input", "config", "output", "error", "metadata", "artifacts"]}),
        (
            "Execution",
            {
                "fields": [
                    "timeout_seconds",
                    "backoff_limit",
                    "exit_code",
                    "duration_ms",
                    "worker",
                    "heartbeat_at",
                    "waiting_reason",
                    "resume_at",
                    "cancel_requested_at",
                ]
            },
        ),
        ("Times", {"fields": ["created_at", "updated_at", "started_at", "completed_at"]}),
        (
            "Relations",
            {
                "classes": ["collapse"],
                "fields": [
                    "parent_run",
                    "root_run",
                    "public_id",
                    "batch_id",
                    "schedule_id",
                    "workflow_id",
                    "trigger_id",
                    "start_mode",
                ],
            },
        ),
        ("Logs", {"classes": ["collapse"], "fields": ["logs"]}),
        ("Events", {"fields": ["recent_events"]}),
    ]

    def has_add_permission(self, request):
        return False  # runs are created through the service (dashboard, API, CLI), never by hand

    @admin.display(description=f"Latest events (up to {EVENTS_SHOWN_ON_RUN})")
    def recent_events(self, obj: Run):
        events = list(obj.events.order_by("-id")[:EVENTS_SHOWN_ON_RUN])[::-1]
        url = (
            reverse("admin:runs_runevent_changelist") + "?" + urlencode({"run__id__exact": obj.pk})
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            (
                (e.id, e.event_type, json.dumps(e.payload)[:500], e.created_at.isoformat())
                for e in events
            ),
        )
        return format_html(
            '<p><a href="{}">All events of this run</a></p><table><thead><tr><th>id</th><th>type</th>'
            "<th>payload</th><th>at</th></tr></thead><tbody>{}</tbody></table>",
            url,
            rows,
        )

    @admin.action(description="Cancel selected runs")
    def cancel_runs(self, request, queryset):
        done = sum(
            service.cancel_run(run, reason=f"cancelled by {request.user} in admin")[0]
            for run in queryset
        )
        self.message_user(request, f"Cancellation requested for {done} run(s).")

    @admin.action(description="Re-run selected runs")
    def rerun_runs(self, request, queryset):
        created = 0
        for run in queryset:
            try:
                service.rerun(run, created_by=str(request.user))
                created += 1
            except service.RunError as exc:
                self.message_user(request, f"{run.pk}: {exc.message}", level=messages.ERROR)
        self.message_user(request, f"Started {created} new run(s).")


@admin.register(RunEvent)
class RunEventAdmin(admin.ModelAdmin):
    list_display = ["id", "run", "event_type", "created_at"]
    list_filter = ["event_type"]
    search_fields = ["=run__id"]
    show_full_result_count = False
    list_per_page = 200

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "project",
        "prefix",
        "scope",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["scope", "project"]
    search_fields = ["name", "prefix"]
    fields = [
        "project",
        "name",
        "scope",
        "prefix",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_tokens"]

    def get_readonly_fields(self, request, obj=None):
        # A token's project and scope are fixed once issued; only its name may change.
        return self.readonly_fields + (["project", "scope"] if obj else [])

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, secret = ApiToken.issue(
            obj.project,
            obj.name,
            read_only=obj.scope == ApiToken.Scope.READ,
            created_by=str(request.user),
        )
        # Django's own "was added" message describes obj: make it the issued token.
        obj.pk, obj.prefix, obj.created_by, obj.created_at = (
            token.pk,
            token.prefix,
            token.created_by,
            token.created_at,
        )
        self.message_user(
            request,
            f"Token created. Copy it now, it will not be shown again: {secret}",
            level=messages.WARNING,
        )

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request, queryset):
        active = list(queryset.filter(revoked_at__isnull=True))
        for token in active:
            token.revoke()
        self.message_user(request, f"Revoked {len(active)} token(s).")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__slug"]
    autocomplete_fields = ["user"]
