"""`manage.py bootstrap`: make sure the `default` project and an admin login exist."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from runs.models import Membership, Project


class Command(BaseCommand):
    help = "Create the default project and an admin user if they are missing (idempotent)."

    def handle(self, *args, **options):
        project, created = Project.objects.get_or_create(
            slug="default", defaults={"name": "Default"}
        )
        if created:
            self.stdout.write(f"Created project 'default' ({project.pk})")
        User = get_user_model()
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        existing = User.objects.filter(username=username).first()
        if existing is not None:
            if created:  # a new default project: its admin should be able to open it
                Membership.objects.get_or_create(
                    project=project, user=existing, defaults={"role": Membership.Role.ADMIN}
                )
            return
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, email="", password=password)
        Membership.objects.get_or_create(
            project=project, user=user, defaults={"role": Membership.Role.ADMIN}
        )
        if generated:
            self.stdout.write(
                "\n  Admin login created (shown only this once):\n"
                f"    username: {username}\n    password: {password}\n"
                "  Change it at /admin/password_change/ or set DJANGO_SUPERUSER_PASSWORD before first start.\n"
            )
        else:
            self.stdout.write(f"Admin login {username!r} created with DJANGO_SUPERUSER_PASSWORD.")
