"""`manage.py createtoken <project>`: prints only the token, so scripts can capture it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from runs.models import ApiToken, Project


class Command(BaseCommand):
    help = "Create an API token for a project (slug or id) and print it. It is shown only once."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug or id")
        parser.add_argument("--name", default="cli", help="a label to recognise the token by")
        parser.add_argument("--read-only", action="store_true", help="the token may only read")

    def handle(self, *args, project, name, read_only, **options):
        # PostgreSQL refuses an over-long value with a DataError traceback; SQLite stores it.
        limit = ApiToken._meta.get_field("name").max_length
        if len(name) > limit:
            raise CommandError(f"--name must be at most {limit} characters")
        found = Project.by_reference(project).first()
        if found is None:
            raise CommandError(f"No project {project!r} (give a slug or an id)")
        _, secret = ApiToken.issue(found, name, read_only=read_only, created_by="createtoken")
        self.stdout.write(secret)
