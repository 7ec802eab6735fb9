"""Issue 13's bugs, seen in Chromium at laptop and phone widths."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from runs.models import ApiToken
from tests.dashboard.conftest import make_user

pytestmark = [pytest.mark.browser]

PHONE = {"width": 390, "height": 844}


def no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "() => [document.documentElement, ...document.querySelectorAll('.table-wrap')]"
        ".every(el => el.scrollWidth <= el.clientWidth + 1)"
    )


def test_a_reload_after_creating_a_token_creates_nothing_and_shows_no_secret(
    live_server, page, sign_in, project, screenshot
):
    sign_in(make_user("olivia", project, "admin"), "/p/acme/tokens/")
    page.get_by_label("Name").fill("CI deploys")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_text("shown only this once")).to_be_visible()
    secret = page.locator("#new-secret").input_value()
    assert ApiToken.objects.authenticate(secret) is not None
    assert all(secret not in c["value"] for c in page.context.cookies())
    screenshot("tokens-created")
    response = page.reload()
    assert response.request.method == "GET"
    expect(page.get_by_text("shown only this once")).to_have_count(0)
    assert secret not in page.content()
    assert ApiToken.objects.count() == 1


def test_the_revoke_confirmation_fits_on_a_phone(live_server, page, sign_in, project, screenshot):
    ApiToken.issue(project, "A token with a rather long descriptive name for deploys")
    ApiToken.issue(project, "nightly")
    sign_in(make_user("olivia", project, "admin"), "/p/acme/tokens/")
    page.set_viewport_size(PHONE)
    assert no_sideways_scroll(page)
    expect(
        page.locator(
            "td .strong", has_text="A token with a rather long descriptive name for deploys"
        )
    ).to_be_visible()
    page.locator("summary", has_text="Revoke").first.click()
    text = page.get_by_text("Anything using it stops working at once.").first
    expect(text).to_be_visible()
    # Not clipped: the paragraph is no wider than the box it is drawn in, and inside the screen.
    assert text.evaluate("el => el.scrollWidth <= el.clientWidth")
    box = text.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert no_sideways_scroll(page)
    page.screenshot(path=str(_shots() / "tokens-revoke-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    text = page.get_by_text("Anything using it stops working at once.").first
    assert text.evaluate("el => el.scrollWidth <= el.clientWidth")
    page.screenshot(path=str(_shots() / "tokens-revoke-laptop.png"), full_page=True)


def _shots():
    from tests.dashboard.browser.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def test_a_task_without_input_schema_has_no_required_input(
    live_server, page, sign_in, project, screenshot
):
    sign_in(make_user("oscar", project, "operator"), "/p/acme/tasks/reports-weekly/")
    expect(page.get_by_role("heading", name="Weekly report")).to_be_visible()
    form = page.locator("#launch-form")
    expect(form.get_by_text("required")).to_have_count(0)
    expect(form.locator(".req")).to_have_count(0)
    expect(form.get_by_text("Input", exact=True)).to_have_count(1)
    expect(page.get_by_label("JSON object")).not_to_have_attribute("required", "")
    screenshot("launch-no-schema")
    page.get_by_role("button", name="Launch run").click()
    expect(page.get_by_role("heading", name="Weekly report")).to_be_visible()
    expect(page).to_have_url(__import__("re").compile(r"/runs/run_"))


def test_runs_filter_dates_are_wide_enough_and_an_error_keeps_the_row(
    live_server, page, sign_in, project, screenshot
):
    sign_in(make_user("oscar", project, "operator"), "/p/acme/runs/")
    since = page.get_by_label("From")
    assert since.bounding_box()["width"] >= 150
    page.goto(f"{live_server.url}/p/acme/runs/?since=2026-03-05&until=2026-03-01")
    expect(page.get_by_text("Must not be before the start date.")).to_be_visible()
    tops = {
        round(page.get_by_label(name, exact=True).bounding_box()["y"])
        for name in ("Search", "Status", "Task", "Trigger", "From", "To")
    }
    assert len(tops) == 1, tops
    assert page.get_by_label("To").bounding_box()["width"] >= 150
    screenshot("runs-filter-date-error")
