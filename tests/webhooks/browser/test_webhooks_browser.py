"""In Chromium: an admin creates a webhook, copies its secret (shown once), sends a signed
request and watches the run it started complete; a notification target gets a test send."""

from __future__ import annotations

import json
import re
import subprocess

import httpx
import pytest
from playwright.sync_api import expect

from runs import signing
from runs.models import Membership, Run
from tests.dashboard.conftest import make_user

pytestmark = [pytest.mark.browser]


@pytest.mark.worker
def test_create_a_webhook_send_a_signed_request_and_see_the_run(
    live_server, page, sign_in, screenshot, worker, project, settings
):
    settings.STUDIO_BASE_URL = live_server.url
    admin = make_user("olivia", project, Membership.Role.ADMIN)
    sign_in(admin)
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    screenshot("webhooks-empty")
    page.get_by_label("Id", exact=True).fill("deploy")
    page.get_by_label("Name", exact=True).fill("Deploy on push")
    page.get_by_label("Target", exact=True).fill("task:sync-data")
    page.get_by_role("button", name="Create webhook").click()

    expect(page).to_have_url(re.compile(r"/p/acme/webhooks/deploy/$"))
    expect(page.get_by_role("heading", name="Webhook secret")).to_be_visible()
    secret = page.locator("#new-secret").input_value()
    assert secret.startswith("whsec_")
    expect(page.locator("#curl")).to_contain_text("X-Studio-Signature: t=$T,v1=$SIG")
    screenshot("webhook-created")
    page.reload()
    expect(page.get_by_role("heading", name="Webhook secret")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text(secret)

    url = page.locator("#webhook-url").text_content()
    assert url == f"{live_server.url}/hooks/acme/deploy"
    # The curl the page gives, run as a person would, with their secret in $SECRET.
    snippet = page.locator("#curl").text_content()
    script = snippet.replace("SECRET='paste the secret here'", f"SECRET='{secret}'")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    answer = json.loads(done.stdout)
    assert answer["accepted"] is True, done
    run_id = answer["run"]["run_id"]
    body = b'{"batchSize": 4}'
    hook_url = url
    bad = httpx.post(
        hook_url,
        content=body,
        headers={"Content-Type": "application/json", "X-Studio-Signature": "t=1,v1=00"},
    )
    assert bad.status_code == 401

    # No reload: the deliveries card refreshes itself when something new arrives.
    deliveries = page.locator("#deliveries")
    expect(deliveries).to_contain_text("202", timeout=10_000)
    expect(deliveries).to_contain_text("401", timeout=10_000)
    screenshot("webhook-deliveries")
    deliveries.get_by_role("link", name=re.compile(r"^run_")).click()
    expect(page).to_have_url(re.compile(rf"/p/acme/runs/{run_id}/$"))
    expect(page.locator(".summary-status .badge")).to_have_text("Completed", timeout=20_000)
    expect(page.locator("#event-log")).to_contain_text("synced")
    run = Run.objects.get(pk=run_id)
    assert run.trigger_kind == "webhook" and run.trigger_id == "deploy"


def test_add_a_notification_target_and_send_a_test(
    live_server, page, sign_in, screenshot, project, settings
):
    from tests.webhooks.receiver import Receiver

    settings.STUDIO_NOTIFY_ALLOW_PRIVATE_URLS = True
    receiver = Receiver().start()
    try:
        admin = make_user("olivia", project, Membership.Role.ADMIN)
        sign_in(admin, "/p/acme/notifications/")
        page.get_by_label("URL", exact=True).fill(receiver.url)
        page.get_by_label("timed out").check()
        page.get_by_role("button", name="Add target").click()
        expect(page.get_by_role("heading", name="Signing secret")).to_be_visible()
        secret = page.locator("#new-secret").input_value()
        page.get_by_role("button", name="Send a test").click()
        expect(page.get_by_text("Test notification delivered")).to_be_visible()
        expect(page.locator("#attempts")).to_contain_text("Delivered (200)")
        expect(page.locator("body")).not_to_contain_text(secret)
        screenshot("notification-target")
        headers, body = receiver.requests[0]
        assert signing.verify_studio([secret], headers["x-studio-signature"], body)
    finally:
        receiver.stop()
