"""Managing webhooks: validating their fields against what exists, and syncing the ones defined
in files under STUDIO_WEBHOOKS_DIR into the database (as task discovery does, on access)."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from .definitions import discover
from .models import Project, Webhook
from .validation import FieldError, apply_defaults, json_problem, schema_errors
from .webhook_files import SLUG_RE, check_fields, discover_webhook_files, signature


def sandboxed_loader(root, items):
    """Webhook files are user code: imported in the sandboxed discovery process."""
    from .sandboxing import load_sandboxed

    return load_sandboxed("webhooks", root, items) if items else {}


EDITABLE = (
    "name",
    "description",
    "target",
    "event_filter",
    "payload_to",
    "enabled",
    "scheme",
    "header_name",
)


def check_webhook(data: dict, *, instance: Webhook | None = None) -> list[FieldError]:
    """Every problem with creating (or, with `instance`, changing) a webhook from `data`."""
    merged: dict[str, Any] = {}
    if instance is not None:
        merged = {key: getattr(instance, key) for key in EDITABLE}
    merged.update({k: v for k, v in data.items() if k in EDITABLE or k == "id"})
    if "payload_to" not in data and str(merged.get("target", "")).startswith("workflow:"):
        merged["payload_to"] = "input"
    problems = [FieldError(f, m, "invalid") for f, m in check_fields(merged)]
    stored = json_problem(merged.get("event_filter"))
    if stored:
        problems.append(FieldError("event_filter", stored, "storable"))
    if instance is None:
        slug = data.get("id")
        if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug):
            problems.append(
                FieldError("id", "must be 1-64 lowercase letters, digits, - or _", "pattern")
            )
    if not any(p.field == "target" for p in problems):
        problems += _check_target(merged["target"], merged.get("payload_to", "config"))
    return problems


def _check_target(target: str, payload_to: str) -> list[FieldError]:
    if not target.startswith("task:"):
        return []  # a workflow target is checked when it runs (workflows land separately)
    definition = discover().get(target.removeprefix("task:"))
    if definition is None:
        return [FieldError("target", f"no task with id {target.removeprefix('task:')!r}", "exists")]
    if payload_to == "config":
        missing = schema_errors(
            definition.input_schema, apply_defaults(definition.input_schema, {})
        )
        if missing:
            return [
                FieldError(
                    "payload_to",
                    f"{target} needs input ({missing[0]}), so the payload cannot go to config: "
                    "send it as input",
                    "input_required",
                )
            ]
    return []


def webhook_url(webhook: Webhook, project: Project) -> str:
    """The public URL senders post to."""
    return settings.STUDIO_BASE_URL + reverse("webhook-receive", args=[project.slug, webhook.slug])


def apply(webhook: Webhook, data: dict) -> Webhook:
    """Copy the editable fields of (checked) `data` onto `webhook`."""
    for key in EDITABLE:
        if key in data:
            setattr(webhook, key, data[key] if key != "header_name" else (data[key] or ""))
    if webhook.target.startswith("workflow:"):
        webhook.payload_to = Webhook.PayloadTo.INPUT
    if webhook.scheme != Webhook.Scheme.HEADER:
        webhook.header_name = ""
    return webhook


# --- Files ------------------------------------------------------------------------------------

_lock = threading.Lock()
_synced: dict[tuple[str, str], tuple] = {}
_errors: list[tuple[str, str]] = []


def sync_file_webhooks(project: Project) -> list[tuple[str, str]]:
    """Bring the project's file-defined webhooks in line with the files; return file errors.

    Cheap when nothing changed (a stat of each file). A file's webhook exists in every project
    unless the file names one with `project`. A removed file disables its webhook (its
    deliveries stay visible); an id already taken by an API-defined webhook is reported."""
    global _errors
    root = settings.STUDIO_WEBHOOKS_DIR
    key = (str(root), str(project.pk))
    with _lock:
        stamp = signature(root)
        if _synced.get(key) == stamp:
            return list(_errors)
        found = discover_webhook_files(root, sandboxed_loader)
        errors = list(found.errors)
        kept = []
        with transaction.atomic():
            existing = {w.slug: w for w in Webhook.objects.filter(project=project)}
            for slug, data in found.webhooks.items():
                if data["project"] and data["project"] != project.slug:
                    continue
                current = existing.get(slug)
                if current is not None and current.source != Webhook.Source.FILE:
                    errors.append(
                        (
                            data["path"],
                            f"id {slug!r} is taken by a webhook made in the dashboard or API "
                            f"of project {project.slug}; the file is ignored there",
                        )
                    )
                    continue
                values = {k: data[k] for k in EDITABLE}
                values.update(secret_env=data["secret_env"], path=data["path"])
                if current is None:
                    Webhook.objects.create(
                        project=project, slug=slug, source=Webhook.Source.FILE, **values
                    )
                elif any(getattr(current, k) != v for k, v in values.items()):
                    for k, v in values.items():
                        setattr(current, k, v)
                    current.save()
                kept.append(slug)
            Webhook.objects.filter(project=project, source=Webhook.Source.FILE).exclude(
                slug__in=kept
            ).exclude(enabled=False, path="").update(enabled=False, path="")
        _synced[key] = stamp
        _errors = errors
        return list(errors)
