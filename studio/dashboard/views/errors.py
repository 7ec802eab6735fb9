"""The 404 page: keeps the project's navigation (for its members) and lists the user's projects."""

from __future__ import annotations

import re

from django.shortcuts import render

from runs.models import Membership, Project

from ..permissions import Access, projects_for

_PROJECT_PATH = re.compile(r"^/p/(?P<slug>[-\w]+)/(?:(?P<section>[a-z]+)/)?")
SECTIONS = {"runs", "tasks", "tokens"}


def not_found(request, exception=None):
    context: dict = {"projects": []}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        context["projects"] = projects_for(user)
        match = _PROJECT_PATH.match(request.path)
        access = _member_access(user, match.group("slug")) if match else None
        if access is not None:
            # Only a member sees the project's tabs; anyone else gets the same page as for a
            # project that does not exist.
            section = match.group("section")
            context.update(
                project=access.project,
                access=access,
                nav=section if section in SECTIONS else "overview",
            )
    return render(request, "404.html", context, status=404)


def _member_access(user, slug: str) -> Access | None:
    if user.is_superuser:
        project = Project.objects.filter(slug=slug).first()
        return Access(project, Membership.Role.ADMIN, superuser=True) if project else None
    membership = (
        Membership.objects.select_related("project")
        .filter(user_id=user.pk, project__slug=slug)
        .first()
    )
    return Access(membership.project, membership.role) if membership else None
