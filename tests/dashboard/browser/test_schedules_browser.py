"""Schedules in headless Chromium: create one, see its next times as you type, watch runs appear."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from runs.models import Run
from tests.dashboard.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_create_a_schedule_see_its_next_times_and_watch_its_runs_appear(
    live_server, page, sign_in, screenshot, worker, project
):
    sign_in(make_user("oscar", project, "operator"))
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Schedules").click()
    page.get_by_role("link", name="New schedule").click()

    page.get_by_label("ID").fill("browser-cron")
    page.get_by_label("Name").fill("Berlin mornings")
    page.get_by_label("Target").select_option("task:sync-data")
    # As the cron is typed, the description and the next five times follow (htmx).
    page.get_by_label("Timezone").fill("Europe/Berlin")
    page.get_by_label("Cron").fill("30 7 * * 1-5")
    expect(page.locator("[data-cron-description]")).to_have_text(
        re.compile(r"At 07:30.*Monday through Friday")
    )
    expect(page.locator("[data-next-times] li")).to_have_count(5)
    expect(page.locator("[data-next-times] li").first).to_contain_text("07:30:00 CE")
    page.get_by_label("Cron").fill("30 7 * * 1-9")
    expect(page.locator("#cron-preview")).to_contain_text("day-of-week field '1-9' is not valid")
    screenshot("schedule-form")

    # Fire every two seconds instead, so runs appear while we watch.
    page.get_by_label("Cron").fill("")
    page.get_by_label("Every (seconds)").fill("2")
    expect(page.locator("[data-next-times] li")).to_have_count(5)
    page.get_by_label("Input").fill('{"limit": 2}')
    page.get_by_role("button", name="Create schedule").click()
    expect(page).to_have_url(re.compile(r"/p/acme/schedules/browser-cron/$"))
    expect(page.get_by_role("heading", name="Berlin mornings")).to_be_visible()
    expect(page.get_by_role("heading", name="Next fire times")).to_be_visible()

    # No reload: the page's ledger and runs refresh themselves while we watch.
    runs = page.get_by_role("region", name="Runs")
    expect(runs.get_by_text("Completed").first).to_be_visible(timeout=30_000)
    assert Run.objects.filter(schedule_id="browser-cron", status="completed").exists()
    expect(page.get_by_role("region", name="Ledger").get_by_text("fired").first).to_be_visible()
    screenshot("schedule-detail")

    # Pause it, with confirmation.
    page.get_by_text("Pause", exact=True).click()
    page.get_by_label("Note (optional)").fill("enough for today")
    page.get_by_role("button", name="Yes, pause").click()
    expect(page.get_by_text("Paused: enough for today")).to_be_visible()
