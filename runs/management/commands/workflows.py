"""`manage.py workflows`: list discovered workflows, then any files that failed to load."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from runs.orchestration.discovery import discover_workflows


class Command(BaseCommand):
    help = "List the workflows found in the workflows directory, and discovery errors."

    def handle(self, *args, **options):
        found = discover_workflows()
        rows = [("ID", "NAME", "STEPS", "DESCRIPTION")] + [
            (d.id, d.name, str(len(d.graph["steps"])), d.description)
            for d in sorted(found.workflows.values(), key=lambda d: d.id)
        ]
        if len(rows) == 1:
            self.stdout.write(
                "No workflows found. Add a file like workflows/hello.py with an "
                "@workflow-decorated build(wf)."
            )
        else:
            widths = [max(len(r[i]) for r in rows) for i in range(3)]
            for row in rows:
                self.stdout.write(
                    "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True))
                    + "  "
                    + row[3]
                )
        if found.errors:
            self.stderr.write(f"\n{len(found.errors)} file(s) could not be loaded:")
            for err in found.errors:
                self.stderr.write(f"  {err.path}: {err.message}")
