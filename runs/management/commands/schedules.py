"""`manage.py schedules`: every schedule (after syncing schedule files), then discovery errors."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from runs.models import Schedule
from runs.schedules.sync import sync_files


class Command(BaseCommand):
    help = "List schedules (id, target, when, next fire, enabled) and schedule-file errors."

    def handle(self, *args, **options):
        report = sync_files(force=True)
        rows = [("PROJECT", "ID", "TARGET", "WHEN", "NEXT FIRE (UTC)", "ENABLED", "SOURCE")]
        for s in Schedule.objects.select_related("project").order_by("project__slug", "slug"):
            if s.is_done:
                nxt = f"done ({s.done_reason})"
            else:
                nxt = s.next_fire_at.strftime("%Y-%m-%d %H:%M:%S") if s.next_fire_at else "-"
            enabled = "yes" if s.enabled else f"paused{': ' + s.pause_note if s.pause_note else ''}"
            rows.append((s.project.slug, s.slug, s.target, s.when, nxt, enabled, s.source))
        if len(rows) == 1:
            self.stdout.write(
                "No schedules. Create one in the dashboard or the API, or add a file under schedules/."
            )
        else:
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for row in rows:
                self.stdout.write(
                    "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                )
        if report.errors:
            self.stderr.write(f"\n{len(report.errors)} schedule file(s) could not be used:")
            for err in report.errors:
                self.stderr.write(f"  {err.path}: {err.message}")
