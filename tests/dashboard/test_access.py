"""Every dashboard URL: anonymous -> login, outsider -> 404, viewer cannot write, CSRF enforced."""

from __future__ import annotations

import pytest
from django.test import Client

from runs.models import ApiToken, Run

from .conftest import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def urls(project):
    run = make_run(project, status="running")
    token, _ = ApiToken.issue(project, "ci")
    base = "/p/acme"
    return {
        "overview": f"{base}/",
        "tasks": f"{base}/tasks/",
        "launch": f"{base}/tasks/onboard-customer/",
        "runs": f"{base}/runs/",
        "run": f"{base}/runs/{run.pk}/",
        "events": f"{base}/runs/{run.pk}/events/?after=0",
        "logs": f"{base}/runs/{run.pk}/logs.txt",
        "tokens": f"{base}/tokens/",
        "_cancel": f"{base}/runs/{run.pk}/cancel/",
        "_revoke": f"{base}/tokens/{token.pk}/revoke/",
    }


GET_PAGES = ["overview", "tasks", "launch", "runs", "run", "events", "logs", "tokens"]
POSTS = ["launch", "_cancel", "_revoke", "tokens"]


@pytest.mark.parametrize("page", GET_PAGES)
def test_anonymous_is_sent_to_login(client, urls, page):
    response = client.get(urls[page])
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("page", POSTS)
def test_anonymous_post_changes_nothing(client, urls, page, project):
    response = client.post(urls[page], {"input.company": "Acme"})
    assert response.status_code == 302
    assert Run.objects.filter(project=project).count() == 1


@pytest.mark.parametrize("page", GET_PAGES)
def test_outsider_gets_404(login, outsider, urls, page):
    assert login(outsider).get(urls[page]).status_code == 404


@pytest.mark.parametrize("page", POSTS)
def test_outsider_cannot_post(login, outsider, urls, page, project):
    response = login(outsider).post(urls[page], {"name": "x"})
    assert response.status_code == 404
    assert Run.objects.get(project=project).cancel_requested_at is None
    assert ApiToken.objects.filter(project=project, revoked_at__isnull=True).count() == 1


def test_unknown_project_is_404_even_for_superusers(login, project):
    from .conftest import make_user

    admin = make_user("root", is_superuser=True, is_staff=True)
    assert login(admin).get("/p/nope/").status_code == 404


def test_superuser_sees_every_project_without_membership(login, project, urls):
    from .conftest import make_user

    admin = make_user("root", is_superuser=True, is_staff=True)
    client = login(admin)
    for page in GET_PAGES:
        assert client.get(urls[page]).status_code in (200, 204), page


@pytest.mark.parametrize("page", ["overview", "tasks", "launch", "runs", "run", "logs"])
def test_viewer_can_read(login, viewer, urls, page):
    assert login(viewer).get(urls[page]).status_code == 200


@pytest.mark.parametrize("page", POSTS)
def test_viewer_cannot_write(login, viewer, urls, page, project):
    response = login(viewer).post(urls[page], {"name": "x", "input.company": "Acme"})
    assert response.status_code == 403
    assert Run.objects.filter(project=project).count() == 1
    assert Run.objects.get(project=project).cancel_requested_at is None


def test_viewer_and_operator_cannot_manage_tokens(login, viewer, operator, urls):
    assert login(viewer).get(urls["tokens"]).status_code == 403
    assert login(operator).get(urls["tokens"]).status_code == 403
    assert login(operator).post(urls["_revoke"]).status_code == 403


@pytest.mark.parametrize("page", POSTS)
def test_posts_need_a_csrf_token(owner, urls, page, project):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(urls[page], {"name": "x"})
    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert Run.objects.get(project=project).cancel_requested_at is None


def test_htmx_posts_send_the_csrf_token_from_body_headers(owner, urls, project):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    page = client.get(urls["run"]).content.decode()
    token = page.split('hx-headers=\'{"X-CSRFToken": "')[1].split('"')[0]
    response = client.post(urls["_cancel"], HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert Run.objects.get(project=project).cancel_requested_at is not None


def test_home_redirects_to_the_users_project(login, viewer):
    response = login(viewer).get("/")
    assert response.status_code == 302
    assert response["Location"] == "/p/acme/"


def test_home_without_projects_says_what_to_do(login, db):
    from .conftest import make_user

    loner = make_user("lonely")
    response = login(loner).get("/")
    assert response.status_code == 200
    assert "not in any project" in response.content.decode()


def test_project_switcher_lists_only_the_users_projects(login, viewer, other_project, project):
    from runs.models import Membership, Project

    third = Project.objects.create(slug="third", name="Third Co")
    Membership.objects.create(project=third, user=viewer, role="operator")
    html = login(viewer).get("/p/acme/").content.decode()
    assert "/p/third/" in html and "Third Co" in html
    assert "/p/outsider/" not in html


def test_login_page_renders_a_labelled_form(client, db):
    html = client.get("/accounts/login/").content.decode()
    assert '<label for="id_username">' in html and '<label for="id_password">' in html
