"""The Workers page and drain: who sees what, and who may drain."""

from __future__ import annotations

import pytest
from django.utils import timezone

from runs.models import Worker
from tests.dashboard.conftest import make_run, make_user

pytestmark = pytest.mark.django_db

URL = "/p/acme/workers/"


@pytest.fixture
def superuser(db):
    return make_user("root", is_superuser=True, is_staff=True)


@pytest.fixture
def fleet(project, other_project):
    """A live worker running a run of each project, and a lost one."""
    live = Worker.objects.create(name="host-a:101.aaa", host="host-a", pid=101, capacity=4)
    mine = make_run(project, status="running", worker=f"{live.name}:Worker-1")
    theirs = make_run(other_project, status="running", worker=f"{live.name}:Worker-2")
    lost = Worker.objects.create(
        name="host-b:202.bbb",
        host="host-b",
        pid=202,
        state=Worker.State.LOST,
        stopped_at=timezone.now(),
        outcome={
            "total": {"failed": 1, "retried": 2},
            "by_project": {str(project.pk): {"retried": 1}, str(other_project.pk): {"failed": 1}},
        },
    )
    return {"live": live, "mine": mine, "theirs": theirs, "lost": lost}


def test_a_superuser_sees_every_worker_and_every_run(login, superuser, fleet):
    page = login(superuser).get(URL).content.decode()
    assert "host-a:101.aaa" in page and "host-b:202.bbb" in page
    assert fleet["mine"].pk in page and fleet["theirs"].pk in page
    assert "1 failed, 2 retried" in page
    assert "Drain" in page


def test_a_project_admin_sees_the_workers_but_only_their_projects_runs(login, owner, fleet):
    response = login(owner).get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "host-a:101.aaa" in page and "host-b:202.bbb" in page
    assert fleet["mine"].pk in page
    assert fleet["theirs"].pk not in page
    assert "1 retried" in page and "failed" not in page
    assert "Yes, drain" not in page


@pytest.mark.parametrize("persona", ["operator", "viewer"])
def test_operators_and_viewers_may_not_see_workers(login, persona, request, fleet):
    assert login(request.getfixturevalue(persona)).get(URL).status_code == 403


def test_an_outsider_gets_404(login, outsider, fleet):
    assert login(outsider).get(URL).status_code == 404


def test_anonymous_is_sent_to_login(client, fleet):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_nav_shows_workers_to_admins_only(login, owner, operator, project):
    assert URL in login(owner).get("/p/acme/").content.decode()
    assert URL not in login(operator).get("/p/acme/").content.decode()


def drain_url(worker) -> str:
    return f"/p/acme/workers/{worker.pk}/drain/"


def test_a_superuser_asks_a_worker_to_drain(login, superuser, fleet):
    response = login(superuser).post(drain_url(fleet["live"]))
    assert response.status_code == 302
    fleet["live"].refresh_from_db()
    assert fleet["live"].drain_requested_at is not None
    assert fleet["live"].drain_requested_by == "root"


@pytest.mark.parametrize("persona", ["owner", "operator", "viewer"])
def test_nobody_but_a_superuser_may_drain(login, persona, request, fleet):
    response = login(request.getfixturevalue(persona)).post(drain_url(fleet["live"]))
    assert response.status_code == 403
    fleet["live"].refresh_from_db()
    assert fleet["live"].drain_requested_at is None


def test_outsider_and_anonymous_drain_change_nothing(login, client, outsider, fleet):
    assert client.post(drain_url(fleet["live"])).status_code == 302
    assert login(outsider).post(drain_url(fleet["live"])).status_code == 404
    fleet["live"].refresh_from_db()
    assert fleet["live"].drain_requested_at is None


def test_drain_needs_post_and_csrf(superuser, fleet):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(superuser)
    assert strict.get(drain_url(fleet["live"])).status_code == 405
    assert strict.post(drain_url(fleet["live"])).status_code == 403
    fleet["live"].refresh_from_db()
    assert fleet["live"].drain_requested_at is None


def test_a_lost_worker_cannot_be_drained(login, superuser, fleet):
    assert login(superuser).post(drain_url(fleet["lost"])).status_code == 404


def test_the_live_part_refreshes_alone(login, superuser, fleet):
    response = login(superuser).get(URL, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert "host-a:101.aaa" in page
    assert "<html" not in page
