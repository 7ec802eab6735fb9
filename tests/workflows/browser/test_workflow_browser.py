"""A workflow in Chromium: launch it, approve it, watch the graph turn green; cancel another."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from runs.models import Run
from tests.dashboard.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_launch_approve_and_watch_the_graph_turn_green(
    live_server, page, sign_in, screenshot, project, start_wf_worker
):
    start_wf_worker(STUDIO_CANCEL_GRACE_SECONDS="0.5")
    sign_in(make_user("oscar", project, "operator"))
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Workflows").click()
    expect(page.get_by_role("heading", name="Workflows")).to_be_visible()
    expect(page.get_by_text("no task with id 'no-such-task'")).to_be_visible()
    page.get_by_role("link", name="Gate", exact=True).click()
    expect(page.locator('g.wf-node[data-step="review"]')).to_be_visible()
    screenshot("workflow")
    page.get_by_role("button", name="Launch workflow").click()

    expect(page).to_have_url(re.compile(r"/p/acme/runs/run_[0-9a-f]{32}/$"))
    review = page.locator('g.wf-node[data-step="review"]')
    expect(review).to_have_attribute("data-status", "waiting", timeout=20_000)
    page.get_by_label("Comment").fill("looks good")
    page.get_by_role("button", name="Approve").click()
    expect(review).to_have_attribute("data-status", "completed", timeout=20_000)
    expect(page.locator('g.wf-node[data-step="ship"]')).to_have_attribute(
        "data-status", "completed", timeout=30_000
    )
    expect(page.locator("#run-summary")).to_contain_text("Completed", timeout=20_000)
    screenshot("workflow-run-completed")
    run = Run.objects.get(kind="workflow")
    assert run.output == {"shipped": "looks good"}

    # Another one, cancelled from its page with confirmation: the cascade stops its child.
    page.goto(f"{live_server.url}/p/acme/workflows/stuck/")
    page.get_by_role("button", name="Launch workflow").click()
    expect(page.locator('g.wf-node[data-step="hold"]')).to_have_attribute(
        "data-status", "running", timeout=20_000
    )
    page.locator("summary", has_text="Cancel run").click()
    page.get_by_role("button", name="Yes, cancel run").click()
    expect(page.locator('g.wf-node[data-step="hold"]')).to_have_attribute(
        "data-status", "cancelled", timeout=30_000
    )
    stuck = Run.objects.get(target="workflow:stuck")
    assert stuck.status == "cancelled"
