from __future__ import annotations

import pytest

from runs.models import ApiToken

pytestmark = pytest.mark.django_db


def test_create_shows_the_secret_once(login, owner, project):
    client = login(owner)
    response = client.post("/p/acme/tokens/", {"name": "CI deploys", "read_only": "on"})
    html = response.content.decode()
    token = ApiToken.objects.get(project=project)
    assert response.status_code == 201
    assert "shown only this once" in html
    secret = html.split('id="new-secret" class="mono" type="text" value="')[1].split('"')[0]
    assert ApiToken.objects.authenticate(secret) == token
    assert token.scope == "read" and token.created_by == "olivia"
    again = client.get("/p/acme/tokens/").content.decode()
    assert secret not in again and token.prefix in again and "CI deploys" in again


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
    assert response.status_code == 200
    assert (
        "Give the token a name." in response.content.decode()
        or "This field is required." in response.content.decode()
    )
    assert not ApiToken.objects.exists()


def test_empty_state(login, owner):
    assert "No tokens yet" in login(owner).get("/p/acme/tokens/").content.decode()
