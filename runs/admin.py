"""Operators' view of Studio. Writes go through runs.service like everywhere else."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from . import service
from .admin_workflows import WORKFLOW_INLINES
from .models import ApiToken, Membership, Project, Run, RunEvent, Schedule, ScheduleOccurrence
from .schedules import store as schedule_store

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
        obj.pk, obj.prefix, obj.created_by, obj.created_at = (
            token.pk,
            token.prefix,
            token.created_by,
            token.created_at,
        )
        request._issued_token_secret = secret  # for response_add, in this response only

    def response_add(self, request, obj, post_url_continue=None):
        """Show the new secret in this response itself. A message would carry it through the
        messages cookie (or the session) to the next page; this page is also never cached."""
        secret = getattr(request, "_issued_token_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Token created",
            "token": obj,
            "secret": secret,
        }
        response = TemplateResponse(request, "admin/runs/apitoken/issued.html", context)
        add_never_cache_headers(response)
        return response

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


from . import admin_webhooks  # noqa: E402, F401  (webhooks and notifications)

# --- Schedules --------------------------------------------------------------------------------
# Writes go through runs.schedules.store, as from the API and the dashboard.


class ScheduleAdminForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = [
            "project",
            "slug",
            "name",
            "description",
            "target",
            "input",
            "config",
            "timeout_seconds",
            "backoff_limit",
            "cron",
            "interval_seconds",
            "run_at",
            "timezone",
            "start_at",
            "end_at",
            "max_runs",
            "concurrency_policy",
            "catch_up",
            "starting_deadline_seconds",
            "enabled",
            "pause_note",
        ]

    def store_data(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if k not in ("project", "slug")}
        data["id"] = self.cleaned_data.get("slug") or (
            self.instance.slug if self.instance.pk else None
        )
        for key in ("run_at", "start_at", "end_at"):
            if data.get(key) is not None:
                data[key] = data[key].isoformat()
        return data

    def clean(self):
        cleaned = super().clean()
        try:
            checked = schedule_store.clean(self.store_data())
            schedule_store.check_target_and_input(checked["target"], checked["input"])
        except schedule_store.ScheduleError as exc:
            for error in exc.errors or []:
                name = {"id": "slug"}.get(error.field.split(".")[0], error.field.split(".")[0])
                self.add_error(name if name in self.fields else None, error.message)
            if not exc.errors:
                self.add_error(None, exc.message)
        return cleaned


class OccurrenceInline(admin.TabularInline):
    model = ScheduleOccurrence
    extra = 0
    can_delete = False
    max_num = 0
    fields = ["slot", "outcome", "run_id", "count", "reason", "recorded_at"]
    readonly_fields = fields
    ordering = ["-slot"]
    show_change_link = False

    def get_queryset(self, request):
        # The newest slots only; the full ledger has its own admin page.
        qs = super().get_queryset(request)
        ids = list(qs.order_by("-slot").values_list("pk", flat=True)[:50])
        return qs.filter(pk__in=ids)


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleAdminForm
    list_display = [
        "slug",
        "project",
        "target",
        "when",
        "next_fire_at",
        "enabled",
        "source",
        "run_count",
    ]
    list_filter = ["enabled", "source", "concurrency_policy", "project"]
    search_fields = ["slug", "name", "target"]
    readonly_fields = [
        "source",
        "source_path",
        "file_error",
        "fire_error",
        "next_fire_at",
        "buffered_slot",
        "last_fired_at",
        "last_run_id",
        "run_count",
        "done_at",
        "done_reason",
        "created_by",
        "created_at",
        "updated_at",
    ]
    inlines = [OccurrenceInline]
    actions = ["pause_selected", "resume_selected", "trigger_selected"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None:
            fields += ["project", "slug"]
        return fields

    def has_change_permission(self, request, obj=None):
        # A file schedule changes with its file; pause and resume are actions.
        if obj is not None and obj.is_file:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_file:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        data = form.store_data()
        if change:
            saved = schedule_store.update(Schedule.objects.get(pk=obj.pk), data)
        else:
            saved = schedule_store.create(
                form.cleaned_data["project"], data, created_by=request.user.get_username()
            )
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})

    def delete_queryset(self, request, queryset):
        for schedule in queryset:
            if not schedule.is_file:
                schedule_store.delete(schedule)

    @admin.action(description="Pause selected schedules")
    def pause_selected(self, request, queryset):
        for schedule in queryset:
            schedule_store.pause(schedule, f"paused in the admin by {request.user.get_username()}")
        messages.success(request, f"Paused {queryset.count()} schedule(s).")

    @admin.action(description="Resume selected schedules")
    def resume_selected(self, request, queryset):
        for schedule in queryset:
            schedule_store.resume(schedule)
        messages.success(request, f"Resumed {queryset.count()} schedule(s).")

    @admin.action(description="Run selected schedules now")
    def trigger_selected(self, request, queryset):
        for schedule in queryset.select_related("project"):
            try:
                run = schedule_store.trigger(schedule, created_by=request.user.get_username())
            except schedule_store.ScheduleError as exc:
                messages.error(request, f"{schedule.slug}: {exc.message}")
            else:
                messages.success(request, f"{schedule.slug}: started {run.pk}")


@admin.register(ScheduleOccurrence)
class ScheduleOccurrenceAdmin(admin.ModelAdmin):
    list_display = ["schedule", "slot", "outcome", "run_id", "count", "reason", "recorded_at"]
    list_filter = ["outcome"]
    search_fields = ["schedule__slug", "run_id"]
    list_select_related = ["schedule"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the ledger is a record of what happened
