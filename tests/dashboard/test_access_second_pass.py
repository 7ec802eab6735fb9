"""Issue 13's new ways into existing pages, per persona: log search, filters and around-links,
the download, the new-runs count and the 404. Outsiders get 404 and learn nothing."""

from __future__ import annotations

import pytest

from runs.models import ApiToken
from tests.dashboard.conftest import log, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(project):
    return make_run(project, status="running", events=[log("secret line")])


def _paths(run):
    return [
        f"/p/acme/runs/{run.pk}/?q=secret",
        f"/p/acme/runs/{run.pk}/?show=&show=stderr",
        f"/p/acme/runs/{run.pk}/?around=1",
        f"/p/acme/runs/{run.pk}/logs.txt?download=1",
        "/p/acme/runs/?q=secret&status=failed",
    ]


@pytest.mark.parametrize("persona", ["owner", "operator", "viewer"])
def test_members_can_read(request, login, run, persona):
    client = login(request.getfixturevalue(persona))
    for path in _paths(run):
        assert client.get(path).status_code == 200, path
    fresh = client.get("/p/acme/runs/?fresh=1~run_" + "0" * 32, HTTP_HX_REQUEST="true")
    assert fresh.status_code == 200 and "1 new run" in fresh.content.decode()


def test_an_outsider_gets_404_and_no_log(login, outsider, run):
    client = login(outsider)
    for path in _paths(run):
        response = client.get(path)
        assert response.status_code == 404, path
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"secret line" not in body
    fresh = client.get("/p/acme/runs/?fresh=1~run_" + "0" * 32, HTTP_HX_REQUEST="true")
    assert fresh.status_code == 404


def test_anonymous_is_sent_to_login(client, run):
    for path in _paths(run):
        assert client.get(path).status_code == 302, path


def test_only_admins_see_tokens_and_a_crafted_cursor_is_harmless(
    login, viewer, owner, project, run
):
    ApiToken.issue(project, "ci")
    assert login(viewer).get("/p/acme/tokens/").status_code == 403
    client = login(owner)
    for cursor in ("9" * 40 + "~run_" + "0" * 32, "x~y", "", "-1~run_" + "0" * 32):
        response = client.get(f"/p/acme/runs/?fresh={cursor}", HTTP_HX_REQUEST="true")
        assert response.status_code == 200, cursor
    # Not a number: ignored. A number no event id can be: a forged link, 400.
    assert client.get(f"/p/acme/runs/{run.pk}/?around=abc").status_code == 200
    for around in ("-5", "9" * 30, str(2**63)):
        assert client.get(f"/p/acme/runs/{run.pk}/?around={around}").status_code == 400
    assert client.get(f"/p/acme/runs/{run.pk}/?q={'x' * 5000}").status_code == 200
    assert client.get(f"/p/acme/runs/{run.pk}/?q=secret&match=99999").status_code == 200
    assert client.get(f"/p/acme/runs/{run.pk}/events/?after={'9' * 30}").status_code == 400
