"""Dashboard personas: an admin (the project's owner), an operator, a viewer and an outsider
(a member of another project only), plus helpers to log in and to put runs in any state."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from runs.models import Membership, Project, Run, RunEvent
from runs.service import create_run

PASSWORD = "correct-horse-battery"


def make_user(username: str, project: Project | None = None, role: str | None = None, **extra):
    user = get_user_model().objects.create_user(username, password=PASSWORD, **extra)
    if project is not None:
        Membership.objects.create(project=project, user=user, role=role)
    return user


@pytest.fixture
def owner(project):
    return make_user("olivia", project, Membership.Role.ADMIN)


@pytest.fixture
def operator(project):
    return make_user("oscar", project, Membership.Role.OPERATOR)


@pytest.fixture
def viewer(project):
    return make_user("vera", project, Membership.Role.VIEWER)


@pytest.fixture
def outsider(other_project):
    return make_user("otto", other_project, Membership.Role.ADMIN)


@pytest.fixture
def login(client):
    """login(user) -> the test client, signed in as `user`."""

    def _login(user):
        client.force_login(user)
        return client

    return _login


def make_run(
    project, *, status="pending", target="task:long-running", input=None, events=(), **fields
) -> Run:
    """A run created through the service, then put into `status` (as the engine would)."""
    run = create_run(project, target=target, input=input or {}, created_by="tests").run
    now = timezone.now()
    changes = {"status": status, **fields}
    if status != "pending":
        changes.setdefault("started_at", now - dt.timedelta(seconds=5))
        changes.setdefault("attempt", 1)
    if status in ("completed", "failed", "cancelled"):
        changes.setdefault("completed_at", now)
        changes.setdefault("duration_ms", 5000)
    Run.objects.filter(pk=run.pk).update(**changes)
    for event_type, payload in events:
        RunEvent.objects.create(run_id=run.pk, event_type=event_type, payload=payload)
    run.refresh_from_db()
    return run


def log(line: str, stream: str = "stdout"):
    return ("log", {"stream": stream, "line": line})


@pytest.fixture(autouse=True)
def enqueued(request, monkeypatch) -> list[str]:
    """Runs handed to the queue. Without a real worker the queue is kept out of it."""
    calls: list[str] = []
    if "worker" not in request.fixturenames and "live_worker" not in request.fixturenames:
        monkeypatch.setattr("runs.lifecycle.enqueue", lambda run_id, **kw: calls.append(run_id))
    return calls
