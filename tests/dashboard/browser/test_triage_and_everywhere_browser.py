"""Issue 13 in Chromium: triage on the runs list, keyboard shortcuts, dark mode and contrast,
focus after form changes and errors, the project switcher and the 404."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from runs.models import Membership, Run, RunEvent
from tests.dashboard.browser.conftest import SCREENSHOTS
from tests.dashboard.conftest import make_run, make_user

pytestmark = [pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 900}


@pytest.fixture
def operator(project):
    return make_user("oscar", project, "operator")


def _shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_runs_list_triage(live_server, page, sign_in, project, operator, screenshot):
    make_run(project, status="completed", target="task:sync-data", name="Nightly sync")
    make_run(
        project,
        status="failed",
        target="task:failing-task",
        name="Broken import",
        error={"message": "UpstreamUnavailable: upstream said 503", "code": "task_error"},
    )
    sign_in(operator, "/p/acme/runs/")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Broken import").locator(".row-error")).to_have_text(
        "UpstreamUnavailable: upstream said 503"
    )
    # Filters apply on change and stay in the URL.
    page.get_by_label("Status").select_option("completed")
    expect(page).to_have_url(re.compile(r"status=completed"))
    expect(rows).to_have_count(1)
    page.get_by_label("Status").select_option("")
    expect(rows).to_have_count(2)
    # Search covers error messages.
    page.get_by_label("Search").fill("said 503")
    page.get_by_label("Search").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Broken import")
    page.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(2)
    # New runs announce themselves; the list does not jump under the reader.
    make_run(project, status="pending", name="Fresh run")
    make_run(project, status="pending", name="Fresher run")
    banner = page.get_by_role("link", name="2 new runs · show")
    expect(banner).to_be_visible(timeout=10_000)
    expect(rows).to_have_count(2)
    screenshot("runs-new-banner")
    banner.click()
    expect(rows).to_have_count(4)
    expect(rows.first).to_contain_text("Fresher run")


def test_the_filter_card_folds_on_a_phone(live_server, page, sign_in, project, operator):
    make_run(project, status="completed")
    page.set_viewport_size(PHONE)
    sign_in(operator, "/p/acme/runs/")
    expect(page.get_by_text("Filters", exact=True)).to_be_visible()
    expect(page.get_by_label("Status")).to_be_hidden()
    _shot(page, "runs-filters-folded-phone")
    page.get_by_text("Filters", exact=True).click()
    expect(page.get_by_label("Status")).to_be_visible()
    _shot(page, "runs-filters-open-phone")
    page.set_viewport_size(LAPTOP)


def test_keyboard_shortcuts(live_server, page, sign_in, project, operator, screenshot):
    first = make_run(project, status="completed", target="task:sync-data", name="First")
    second = make_run(project, status="running", target="task:long-running", name="Second")
    sign_in(operator, "/p/acme/runs/")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()  # signed in, page loaded
    page.keyboard.press("/")
    expect(page.get_by_label("Search")).to_be_focused()
    page.locator("h1").click()  # leave the field
    page.keyboard.press("j")
    expect(page.get_by_role("link", name="Second", exact=True)).to_be_focused()
    page.keyboard.press("j")
    expect(page.get_by_role("link", name="First", exact=True)).to_be_focused()
    page.keyboard.press("k")
    expect(page.locator("tr.row-current")).to_contain_text("Second")
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    screenshot("shortcuts")
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()
    page.get_by_role("link", name="Second", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(second.pk))
    page.keyboard.press("c")
    yes = page.get_by_role("button", name="Yes, cancel run")
    expect(yes).to_be_visible()
    expect(yes).to_be_focused()
    page.keyboard.press("Escape")
    expect(yes).to_be_hidden()
    assert Run.objects.get(pk=second.pk).cancel_requested_at is None  # asked, not done
    page.keyboard.press("c")
    page.keyboard.press("Enter")
    expect(page.locator(".summary-status .badge")).to_have_text(re.compile("Cancel"))
    page.goto(f"{live_server.url}/p/acme/runs/{first.pk}/")
    page.keyboard.press("r")
    expect(page).to_have_url(re.compile(rf"/tasks/sync-data/\?rerun={first.pk}"))


CONTRAST_JS = """
(pairs) => {
  function rgb(c) { const m = c.match(/[\\d.]+/g).map(Number); return m.slice(0, 3); }
  function lum(c) {
    const [r, g, b] = rgb(c).map(v => { v /= 255; return v <= .03928 ? v / 12.92 : ((v + .055) / 1.055) ** 2.4; });
    return .2126 * r + .7152 * g + .0722 * b;
  }
  function ratio(a, b) { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + .05) / (y + .05); }
  return pairs.map(([sel, fgProp, bgSel, bgProp]) => {
    const el = document.querySelector(sel), bg = document.querySelector(bgSel);
    if (!el || !bg) return [sel, null];
    const fg = getComputedStyle(el)[fgProp], back = getComputedStyle(bg)[bgProp];
    return [sel, Math.round(ratio(fg, back) * 100) / 100];
  });
}
"""
PAIRS = [
    ("body", "color", "body", "backgroundColor"),
    (".muted", "color", ".card", "backgroundColor"),
    (".ev-time", "color", "#event-log", "backgroundColor"),
    (".ev-line", "color", "#event-log", "backgroundColor"),
    (".stream-stderr", "color", ".stream-stderr", "backgroundColor"),
    (".badge-running", "color", ".badge-running", "backgroundColor"),
    (".tabs a", "color", ".topbar", "backgroundColor"),
    (".summary-actions .btn", "color", ".card", "backgroundColor"),
]
CHART_PAIRS = [
    (".btn-primary", "color", ".btn-primary", "backgroundColor"),
    (".seg-cancelled", "fill", ".card", "backgroundColor"),
    (".seg-pending", "fill", ".card", "backgroundColor"),
    (".seg-waiting", "fill", ".card", "backgroundColor"),
    (".seg-failed", "fill", ".card", "backgroundColor"),
    (".stat-label", "color", ".stat a", "backgroundColor"),
]


def _contrast(page, pairs):
    results = page.evaluate(CONTRAST_JS, [list(p) for p in pairs])
    low = [(sel, value) for sel, value in results if value is None or value < 4.5]
    assert not low, low


def test_dark_mode_follows_the_system_and_the_toggle_is_remembered(
    live_server, page, sign_in, project, operator
):
    run = make_run(
        project, status="running", events=[("log", {"stream": "stderr", "line": "oops"})]
    )
    for status in ("completed", "failed", "cancelled", "pending", "waiting"):
        make_run(project, status=status)
    page.emulate_media(color_scheme="dark")
    sign_in(operator, f"/p/acme/runs/{run.pk}/")
    body_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert body_bg == "rgb(18, 19, 23)"
    _contrast(page, PAIRS)
    _shot(page, "run-dark-laptop")
    page.set_viewport_size(PHONE)
    _shot(page, "run-dark-phone")
    page.set_viewport_size(LAPTOP)
    for name, path in (("runs", "/p/acme/runs/"), ("launch", "/p/acme/tasks/onboard-customer/")):
        page.goto(f"{live_server.url}{path}")
        _contrast(page, [("body", "color", "body", "backgroundColor")])
        _shot(page, f"{name}-dark-laptop")
        page.set_viewport_size(PHONE)
        _shot(page, f"{name}-dark-phone")
        page.set_viewport_size(LAPTOP)
    page.goto(f"{live_server.url}/p/acme/")
    _contrast(page, CHART_PAIRS)
    _shot(page, "overview-dark-laptop")
    page.set_viewport_size(PHONE)
    _shot(page, "overview-dark-phone")
    page.set_viewport_size(LAPTOP)
    page.get_by_role("button", name="Dark mode").click()  # pressed -> light
    expect(page.get_by_role("button", name="Dark mode")).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 246, 244)"
    page.reload()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 246, 244)"
    _contrast(page, CHART_PAIRS)
    page.goto(f"{live_server.url}/p/acme/runs/{run.pk}/")
    _contrast(page, PAIRS)


def test_add_and_remove_keep_focus(live_server, page, sign_in, project, operator):
    sign_in(operator, "/p/acme/tasks/onboard-customer/")
    page.get_by_role("button", name="+ Add item").click()
    expect(page.get_by_label("Tags 1")).to_be_focused()
    page.keyboard.type("vip")
    page.get_by_role("button", name="+ Add item").click()
    expect(page.get_by_label("Tags 2")).to_be_focused()
    page.keyboard.type("beta")
    page.get_by_role("button", name="Remove Tags 1").click()
    # The row that took its place ("beta", now Tags 1) has the focus.
    expect(page.get_by_label("Tags 1")).to_be_focused()
    expect(page.get_by_label("Tags 1")).to_have_value("beta")
    page.get_by_role("button", name="Remove Tags 1").click()
    expect(page.get_by_role("button", name="+ Add item")).to_be_focused()


def test_server_errors_focus_the_first_invalid_field_radio_groups_too(
    live_server, page, sign_in, project, operator
):
    sign_in(operator, "/p/acme/tasks/onboard-customer/")
    page.get_by_label("Company name").fill("Globex")
    page.get_by_label("Billing email").fill("billing@globex.example")
    page.get_by_label("Start date").fill("2025-03-01")
    page.evaluate(
        "document.getElementById('launch-form').noValidate = true;"
        "document.querySelectorAll('#launch-form input[type=radio]')"
        ".forEach(r => { r.checked = false; });"
    )
    page.get_by_role("button", name="Launch run").click()
    expect(page.get_by_text("The run was not created")).to_be_visible()
    first_radio = page.get_by_role("radio").first
    expect(first_radio).to_have_attribute("aria-invalid", "true")
    expect(first_radio).to_be_focused()
    _shot(page, "launch-radio-error-laptop")


def test_a_failed_login_focuses_the_password(live_server, page, project, operator):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("oscar")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_focused()
    expect(page.get_by_label("Username")).to_have_value("oscar")


def test_the_project_switcher_keeps_the_section(
    live_server, page, sign_in, project, other_project, operator
):
    Membership.objects.create(project=other_project, user=operator, role="viewer")
    sign_in(operator, "/p/acme/tasks/")
    page.get_by_role("group").filter(has_text="Acme").locator("summary").click()
    page.get_by_role("link", name=re.compile("Outsider Inc")).click()
    expect(page).to_have_url(re.compile(r"/p/outsider/tasks/$"))


def test_the_404_keeps_navigation_and_lists_projects(
    live_server, page, sign_in, project, operator, screenshot
):
    sign_in(operator, "/p/acme/")
    response = page.goto(f"{live_server.url}/p/acme/runs/run_{'0' * 32}/")
    assert response.status == 404
    expect(page.get_by_role("navigation", name="Project")).to_be_visible()
    expect(page.get_by_role("heading", name="Your projects")).to_be_visible()
    screenshot("not-found-in-project")


def test_a_new_projects_overview_says_how_to_start(
    live_server, page, sign_in, project, operator, screenshot
):
    sign_in(operator, "/p/acme/")
    expect(page.get_by_text("how to get started")).to_be_visible()
    expect(page.get_by_text("Write a task")).to_be_visible()
    screenshot("overview-getting-started")


def test_notification_when_the_run_ends(live_server, page, sign_in, project):
    viewer = make_user("vera", project, "viewer")
    run = make_run(project, status="running", name="Watched")
    page.add_init_script(
        """
        window.__notes = [];
        window.Notification = class {
          constructor(title, options) { window.__notes.push(title); }
          static requestPermission() { return Promise.resolve("granted"); }
        };
        window.Notification.permission = "granted";
        """
    )
    sign_in(viewer, f"/p/acme/runs/{run.pk}/")
    page.get_by_role("button", name="Notify me when it ends").click()
    expect(page.get_by_role("button", name="You will be notified")).to_be_visible()
    Run.objects.filter(pk=run.pk).update(status="failed", error={"message": "boom"})
    RunEvent.objects.create(
        run_id=run.pk, event_type="run.failed", payload={"error": {"message": "boom"}}
    )
    expect(page.locator(".summary-status .badge")).to_have_text("Failed")
    page.wait_for_function("window.__notes.length === 1")
    assert page.evaluate("window.__notes[0]") == "Watched failed"
    expect(page).to_have_title(re.compile(r"^✗ Watched"))
