"""`manage.py webhook run <id> --payload file.json`: run a webhook's target locally, in this
process, with that payload (as a delivery would hand it over, without the HTTP and signature)."""

from __future__ import annotations

import json
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from runs.event_filter import matches
from runs.models import Project, Webhook
from runs.webhook_files import discover_webhook_files
from runs.webhooks import sync_file_webhooks


class Command(BaseCommand):
    help = "Webhook tools. `webhook run <id> --payload file.json` runs its target locally."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="run the webhook's target here with a payload")
        run.add_argument("webhook_id")
        run.add_argument(
            "--payload", required=True, help="a JSON file holding the payload ('-' for stdin)"
        )
        run.add_argument("--project", help="project slug or id (needed if several have the id)")
        run.add_argument(
            "--header",
            action="append",
            default=[],
            metavar="NAME:VALUE",
            help="a request header for the event filter, e.g. X-GitHub-Event:push",
        )
        run.add_argument(
            "--skip-filter", action="store_true", help="run even if the event filter says no"
        )

    def handle(self, *args, action, webhook_id, payload, project, header, skip_filter, **options):
        definition = self._find(webhook_id, project)
        data = self._payload(payload)
        headers = {}
        for item in header:
            name, sep, value = item.partition(":")
            if not sep:
                raise CommandError(f"--header {item!r} must look like Name:value", returncode=2)
            headers[name.strip().lower()] = value.strip()
        if not skip_filter and not matches(definition["event_filter"], data, headers):
            self.stdout.write(
                "Filtered out: the webhook's event filter does not match this payload, so a "
                "delivery would start nothing (use --skip-filter to run anyway)."
            )
            return
        target = definition["target"]
        if not target.startswith("task:"):
            raise CommandError(f"{target}: only task targets run locally for now", returncode=2)
        as_input = definition["payload_to"] == "input"
        self.stdout.write(
            f"Webhook {webhook_id}: payload as {'input' if as_input else 'config'} of {target}"
        )
        call_command(
            "task",
            target.removeprefix("task:"),
            input=json.dumps(data if as_input else {}),
            config=json.dumps({} if as_input else data),
            project=definition.get("project_slug"),
        )

    def _find(self, webhook_id: str, project_ref: str | None) -> dict:
        projects = Project.objects.all()
        if project_ref:
            projects = Project.by_reference(project_ref)
            if not projects.exists():
                raise CommandError(
                    f"No project {project_ref!r} (give a slug or an id)", returncode=2
                )
        for project in projects:
            sync_file_webhooks(project)
        found = list(
            Webhook.objects.filter(project__in=projects, slug=webhook_id).select_related("project")
        )
        if len(found) > 1:
            names = ", ".join(sorted(w.project.slug for w in found))
            raise CommandError(
                f"Webhook {webhook_id!r} exists in several projects ({names}): pass --project",
                returncode=2,
            )
        if found:
            w = found[0]
            return {
                "target": w.target,
                "payload_to": "input" if w.target.startswith("workflow:") else w.payload_to,
                "event_filter": w.event_filter,
                "project_slug": w.project.slug,
            }
        files = discover_webhook_files(settings.STUDIO_WEBHOOKS_DIR)
        if webhook_id in files.webhooks:
            return {**files.webhooks[webhook_id], "project_slug": None}
        raise CommandError(f"No webhook {webhook_id!r}", returncode=2)

    def _payload(self, path: str):
        try:
            if path == "-":
                raw = sys.stdin.read()
            else:
                with open(path, encoding="utf-8") as f:
                    raw = f.read()
        except OSError as exc:
            raise CommandError(
                f"cannot read --payload {path}: {exc.strerror}", returncode=2
            ) from None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise CommandError(f"--payload is not valid JSON: {exc}", returncode=2) from None
        if not isinstance(data, dict):
            raise CommandError("--payload must hold a JSON object", returncode=2)
        return data
