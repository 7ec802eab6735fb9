"""`manage.py createproject <slug>`: prints the new project's id."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug

from runs.models import Project


class Command(BaseCommand):
    help = "Create a project and print its id."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", help="display name (default: the slug)")

    def handle(self, *args, slug, name, **options):
        try:
            validate_slug(slug)
        except ValidationError:
            raise CommandError(
                f"{slug!r} is not a valid slug: use letters, numbers, '-' and '_'"
            ) from None
        try:
            uuid.UUID(slug)
        except ValueError:
            pass
        else:
            # Project.by_reference reads a UUID-shaped reference as an id, never as a slug, so
            # such a project could not be named on the command line or in the API.
            raise CommandError(f"{slug!r} looks like a project id; choose a slug that does not")
        # PostgreSQL refuses an over-long value with a DataError traceback; SQLite stores it.
        for option, field, value in (("slug", "slug", slug), ("--name", "name", name or "")):
            limit = Project._meta.get_field(field).max_length
            if len(value) > limit:
                raise CommandError(f"{option} must be at most {limit} characters")
        if Project.objects.filter(slug=slug).exists():
            raise CommandError(f"A project with slug {slug!r} already exists")
        project = Project.objects.create(slug=slug, name=name or slug)
        self.stdout.write(str(project.pk))
