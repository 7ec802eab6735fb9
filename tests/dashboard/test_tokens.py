from __future__ import annotations

import pytest

from runs.models import ApiToken

pytestmark = pytest.mark.django_db


def test_create_shows_the_secret_once(login, owner, project):
    client = login(owner)
    response = client.post("/p/acme/tokens/", {"name": "CI deploys", "read_only": "on"})
    assert response.status_code == 302 and response["Location"] == "/p/acme/tokens/"
    assert "secret" not in str(response.cookies).lower()
    page = client.get("/p/acme/tokens/")
    html = page.content.decode()
    token = ApiToken.objects.get(project=project)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    assert "shown only this once" in html
    secret = html.split('id="new-secret" class="mono" type="text" value="')[1].split('"')[0]
    assert ApiToken.objects.authenticate(secret) == token
    assert token.scope == "read" and token.created_by == "olivia"
    again = client.get("/p/acme/tokens/").content.decode()
    assert secret not in again and token.prefix in again and "CI deploys" in again
    assert "shown only this once" not in again
    assert secret not in "".join(c.value for c in client.cookies.values())
    assert ApiToken.objects.count() == 1  # a reload creates nothing


def test_the_secret_is_not_shown_in_another_project(login, owner, project, other_project):
    from runs.models import Membership

    Membership.objects.create(project=other_project, user=owner, role="admin")
    client = login(owner)
    client.post("/p/acme/tokens/", {"name": "CI"})
    html = client.get("/p/outsider/tokens/").content.decode()
    assert "shown only this once" not in html


def test_list_shows_last_use_and_revoked_tokens(login, owner, project, other_project):
    used, _ = ApiToken.issue(project, "used")
    used.touch()
    ApiToken.issue(project, "fresh")
    gone, _ = ApiToken.issue(project, "gone")
    gone.revoke()
    ApiToken.issue(other_project, "not ours")
    html = login(owner).get("/p/acme/tokens/").content.decode()
    assert "Never" in html and "just now" in html
    assert "Revoked" in html
    assert "not ours" not in html


def test_revoke(login, owner, project):
    token, secret = ApiToken.issue(project, "old")
    response = login(owner).post(f"/p/acme/tokens/{token.pk}/revoke/", follow=True)
    assert "revoked" in response.content.decode()
    assert ApiToken.objects.authenticate(secret) is None


def test_revoke_another_projects_token_is_404(login, owner, other_project):
    token, secret = ApiToken.issue(other_project, "theirs")
    assert login(owner).post(f"/p/acme/tokens/{token.pk}/revoke/").status_code == 404
    assert ApiToken.objects.authenticate(secret) is not None


def test_a_name_is_required(login, owner):
    response = login(owner).post("/p/acme/tokens/", {"name": "  "})
    assert response.status_code == 422
    assert (
        "Give the token a name." in response.content.decode()
        or "This field is required." in response.content.decode()
    )
    assert not ApiToken.objects.exists()


def test_empty_state(login, owner):
    assert "No tokens yet" in login(owner).get("/p/acme/tokens/").content.decode()
