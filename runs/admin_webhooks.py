"""Admin for webhooks, their deliveries and run notifications. Secrets never appear here: a
new webhook's (or JSON target's) secret is issued on save and shown once in a message."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from . import notify
from .models import (
    NotificationAttempt,
    NotificationOutbox,
    NotificationTarget,
    Webhook,
    WebhookDelivery,
)
from .webhooks import EDITABLE, check_webhook


class WebhookAdminForm(forms.ModelForm):
    class Meta:
        model = Webhook
        fields = ["project", "slug", *EDITABLE]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        values = {k: data.get(k) for k in EDITABLE}
        instance = self.instance if self.instance.pk else None
        if instance is None:
            values["id"] = data.get("slug")
        for problem in check_webhook(values, instance=instance):
            name = "slug" if problem.field == "id" else problem.field.split(".")[0]
            self.add_error(name if name in self.fields else None, problem.message)
        return data


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookAdminForm
    list_display = ["slug", "project", "target", "scheme", "enabled", "source", "updated_at"]
    list_filter = ["enabled", "scheme", "source", "project"]
    search_fields = ["slug", "name", "target"]
    readonly_fields = ["source", "path", "secret_env", "previous_secret_expires_at", "created_at"]
    actions = ["rotate_secrets"]

    def get_readonly_fields(self, request, obj=None):
        # A file-defined webhook is changed in its file; edits here would be overwritten.
        if obj is not None and obj.source == Webhook.Source.FILE:
            return [f.name for f in Webhook._meta.fields if f.editable] + self.readonly_fields
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        secret = None
        if not change:
            secret = obj.set_secret()
        super().save_model(request, obj, form, change)
        if secret:
            messages.warning(
                request, f"Secret of “{obj.slug}” (shown only this once, copy it now): {secret}"
            )

    @admin.action(description="Rotate the secret (the old one works 24 more hours)")
    def rotate_secrets(self, request, queryset):
        for webhook in queryset.filter(source=Webhook.Source.API):
            secret = webhook.rotate_secret()
            messages.warning(request, f"New secret of “{webhook.slug}” (shown once): {secret}")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["received_at", "webhook", "verification", "filter_result", "status_code", "run"]
    list_filter = ["verification", "status_code", "project"]
    list_select_related = ["webhook", "run"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class NotificationTargetAdminForm(forms.ModelForm):
    url = forms.CharField(max_length=2000, label="URL")

    class Meta:
        model = NotificationTarget
        fields = [
            "project",
            "name",
            "kind",
            "url",
            "targets",
            "outcomes",
            "include_children",
            "enabled",
        ]

    def clean_url(self):
        url = self.cleaned_data["url"]
        problem = notify.url_problem(url)
        if problem:
            raise forms.ValidationError(f"This URL {problem}.")
        return url

    def clean_outcomes(self):
        outcomes = self.cleaned_data["outcomes"] or []
        bad = [o for o in outcomes if o not in NotificationTarget.OUTCOMES]
        if bad or not isinstance(outcomes, list):
            raise forms.ValidationError(f"Use a list of {', '.join(NotificationTarget.OUTCOMES)}.")
        return outcomes


@admin.register(NotificationTarget)
class NotificationTargetAdmin(admin.ModelAdmin):
    form = NotificationTargetAdminForm
    list_display = [
        "__str__",
        "project",
        "kind",
        "enabled",
        "consecutive_failures",
        "last_success_at",
    ]
    list_filter = ["kind", "enabled", "project"]
    readonly_fields = ["consecutive_failures", "failing_since", "last_success_at"]

    def save_model(self, request, obj, form, change):
        secret = None
        if not change and obj.kind == NotificationTarget.Kind.JSON:
            secret = obj.set_secret()
        super().save_model(request, obj, form, change)
        if secret:
            messages.warning(request, f"Signing secret (shown only this once): {secret}")


class AttemptInline(admin.TabularInline):
    model = NotificationAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["attempted_at", "ok", "status_code", "error", "duration_ms"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(NotificationOutbox)
class NotificationOutboxAdmin(admin.ModelAdmin):
    list_display = ["id", "event", "target", "run", "state", "attempts", "next_attempt_at"]
    list_filter = ["state", "event", "project"]
    list_select_related = ["target", "run"]
    readonly_fields = [f.name for f in NotificationOutbox._meta.fields]
    inlines = [AttemptInline]

    def has_add_permission(self, request):
        return False
