"""`manage.py schedule run <id>`: run a schedule's target here, with its input, like `task`."""

from __future__ import annotations

import json

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from runs.models import Project, Schedule


class Command(BaseCommand):
    help = "Run a schedule's target locally in this process, with the schedule's input and config."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="run the schedule's target now, in this process")
        run.add_argument("schedule_id")
        run.add_argument("--project", help="project slug or id (needed if the id is in several)")

    def handle(self, *args, action, schedule_id, project=None, **options):
        schedules = Schedule.objects.select_related("project").filter(slug=schedule_id)
        if project:
            found = Project.by_reference(project).first()
            if found is None:
                raise CommandError(f"No project {project!r} (give a slug or an id)")
            schedules = schedules.filter(project=found)
        matches = list(schedules[:2])
        if not matches:
            raise CommandError(f"No schedule {schedule_id!r}; `manage.py schedules` lists them")
        if len(matches) > 1:
            raise CommandError(f"{schedule_id!r} exists in several projects: pass --project")
        schedule = matches[0]
        if not schedule.target.startswith("task:"):
            raise CommandError(f"{schedule.target} cannot run locally: only task targets can")
        call_command(
            "task",
            schedule.target.removeprefix("task:"),
            input=json.dumps(schedule.input),
            config=json.dumps(schedule.config),
            project=str(schedule.project.pk),
            stdout=self.stdout,
            stderr=self.stderr,
        )
