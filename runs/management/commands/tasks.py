"""`manage.py tasks`: list discovered tasks, then any files that failed to load."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from runs.definitions import discover


class Command(BaseCommand):
    help = "List the tasks found in the tasks directory, and discovery errors."

    def handle(self, *args, **options):
        found = discover()
        rows = [("ID", "NAME", "SCHEDULABLE", "DESCRIPTION")] + [
            (d.id, d.name, "yes" if d.schedulable else "no", d.description)
            for d in sorted(found.tasks.values(), key=lambda d: d.id)
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        if len(rows) == 1:
            self.stdout.write(
                "No tasks found. Add a file like tasks/hello.py with an @task-decorated run(ctx)."
            )
        else:
            for row in rows:
                self.stdout.write(
                    "  ".join(col.ljust(w) for col, w in zip(row[:3], widths, strict=True))
                    + "  "
                    + row[3]
                )
        if found.errors:
            self.stderr.write(f"\n{len(found.errors)} file(s) could not be loaded:")
            for err in found.errors:
                self.stderr.write(f"  {err.path}: {err.message}")
