"""The SDK's webhook and notification methods against a live Studio server."""

from __future__ import annotations

import pytest

from runs.client import RunsClient, RunsError
from runs.models import ApiToken

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def sdk(project, settings, live_server):
    settings.STUDIO_NOTIFY_ALLOW_PRIVATE_URLS = True
    token = ApiToken.issue(project, "sdk")[1]
    with RunsClient(
        api_url=f"{live_server.url}/api", auth_token=token, project_reference="acme"
    ) as client:
        yield client


def test_webhooks_round_trip(sdk):
    created = sdk.create_webhook(id="deploy", target="task:sync-data", scheme="github")
    assert created["secret"].startswith("whsec_")
    assert [w["id"] for w in sdk.webhooks()] == ["deploy"]
    assert sdk.update_webhook("deploy", enabled=False)["enabled"] is False
    rotated = sdk.rotate_webhook_secret("deploy", overlap_seconds=60)
    assert rotated["secret"] != created["secret"]
    assert list(sdk.webhook_deliveries("deploy")) == []
    sdk.delete_webhook("deploy")
    with pytest.raises(RunsError) as exc:
        sdk.webhook("deploy")
    assert exc.value.status == 404


def test_notifications_round_trip(sdk):
    created = sdk.create_notification(url="http://127.0.0.1:9/x", outcomes=["failed"])
    nid = created["notification"]["id"]
    assert created["secret"]
    assert sdk.create_notification(url="https://x.example.com", kind="slack")["secret"] is None
    assert sdk.update_notification(nid, include_children=True)["include_children"] is True
    assert sdk.notification(nid)["url"] == "http://127.0.0.1:9/x"
    assert len(sdk.notifications()) == 2
    assert list(sdk.notification_attempts(nid)) == []
    sdk.delete_notification(nid)
    with pytest.raises(RunsError) as exc:
        sdk.create_notification(url="ftp://x")
    assert exc.value.status == 422 and exc.value.detail[0]["field"] == "url"
