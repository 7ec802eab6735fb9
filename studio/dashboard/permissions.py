"""Who may see and do what in a project. Outsiders get 404, never a hint that a project exists."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from runs.models import Membership, Project

Role = Membership.Role
RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Access:
    """The signed-in user's standing in one project."""

    project: Project
    role: str
    superuser: bool = False

    @property
    def can_operate(self) -> bool:
        """Launch, cancel and re-run."""
        return RANK[self.role] >= RANK[Role.OPERATOR]

    @property
    def can_admin(self) -> bool:
        """Manage API tokens; see discovery errors."""
        return RANK[self.role] >= RANK[Role.ADMIN]

    def require(self, role: str) -> Access:
        if RANK[self.role] < RANK[role]:
            raise PermissionDenied(f"needs the {role} role in {self.project.slug}")
        return self


def get_access(request: HttpRequest, slug: str, role: str = Role.VIEWER) -> Access:
    """The user's access to project `slug`: 404 unless a member (or a superuser), 403 if the
    role is too low for what they are doing. One query."""
    user = request.user
    if user.is_superuser:
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise Http404("no such project")
        access = Access(project, Role.ADMIN, superuser=True)
    else:
        membership = (
            Membership.objects.select_related("project")
            .filter(user_id=user.pk, project__slug=slug)
            .only("role", "project")
            .first()
        )
        if membership is None:
            raise Http404("no such project")
        access = Access(membership.project, membership.role)
    request.access = access
    if request.session.get("dashboard_project") != access.project.slug:
        request.session["dashboard_project"] = access.project.slug  # where "/" takes them next time
    return access.require(role)


def projects_for(user) -> list[tuple[Project, str]]:
    """Every project the user can open, with their role, for the switcher."""
    if user.is_superuser:
        return [(p, Role.ADMIN) for p in Project.objects.only("slug", "name")]
    memberships = Membership.objects.select_related("project").filter(user_id=user.pk)
    return sorted(((m.project, m.role) for m in memberships), key=lambda pr: pr[0].slug)
