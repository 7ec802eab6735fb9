"""The dashboard in headless Chromium: what a person sees and does, end to end."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from runs.models import ApiToken, Run
from runs.service import create_run
from tests.dashboard.conftest import make_run, make_user

pytestmark = [pytest.mark.browser]


@pytest.fixture
def people(project, other_project):
    return {
        "operator": make_user("oscar", project, "operator"),
        "admin": make_user("olivia", project, "admin"),
        "outsider": make_user("otto", other_project, "admin"),
    }


@pytest.mark.worker
def test_launch_the_rich_schema_example_and_watch_it_run(
    live_server, page, sign_in, screenshot, people, worker, project
):
    sign_in(people["operator"])
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Tasks").click()
    screenshot("tasks")
    page.get_by_role("link", name="Onboard customer", exact=True).click()
    expect(page.get_by_role("heading", name="Onboard customer")).to_be_visible()

    page.get_by_label("Company name").fill("Globex <Corp>")
    page.get_by_label("Billing email").fill("billing@globex.example")
    page.get_by_label("pro", exact=True).check()
    page.get_by_label("Seats").fill("12")
    page.get_by_label("Start date").fill("2025-03-01")
    page.get_by_label("Send welcome email").uncheck()
    page.get_by_role("button", name="+ Add item").click()
    # The keyboard lands on the new row once the form has settled; typing before that could
    # lose the focus (and the text) to it.
    expect(page.get_by_label("Tags 1")).to_be_focused()
    page.get_by_label("Tags 1").fill("vip")
    page.get_by_label("City").fill("Berlin")  # ...but no country: the server says what is missing
    page.get_by_role("button", name="Launch run").click()

    expect(page.get_by_text("The run was not created")).to_be_visible()
    country = page.get_by_label("Country code")
    expect(page.locator("#f-input-address-country-errors")).to_have_text("This field is required.")
    expect(page.get_by_label("Company name")).to_have_value("Globex <Corp>")
    expect(page.get_by_label("Tags 1")).to_have_value("vip")
    screenshot("launch-with-error")
    assert Run.objects.count() == 0

    country.fill("DE")
    page.get_by_role("button", name="Launch run").click()
    expect(page).to_have_url(re.compile(r"/p/acme/runs/run_[0-9a-f]{32}/$"))
    # Log lines arrive without a reload, escaped as text.
    expect(page.locator("#event-log")).to_contain_text(
        "creating account for Globex <Corp> on the pro plan", timeout=20_000
    )
    expect(page.locator(".summary-status .badge")).to_have_text("Completed", timeout=20_000)
    expect(page.locator("#run-result")).to_contain_text('"account_id": "acct_globexcorp"')
    run = Run.objects.get()
    assert run.input["seats"] == 12 and run.input["send_welcome_email"] is False
    assert run.input["address"] == {"city": "Berlin", "country": "DE"} and run.input["tags"] == [
        "vip"
    ]
    screenshot("run-completed")


@pytest.mark.worker
def test_watch_a_long_run_live_then_cancel_it(
    live_server, page, sign_in, screenshot, people, worker, project
):
    run = create_run(
        project, target="task:long-running", input={"steps": 400, "delay_seconds": 0.2}
    ).run
    sign_in(people["operator"], f"/p/acme/runs/{run.pk}/")
    log = page.locator("#event-log")
    expect(log).to_contain_text("processing item 3", timeout=20_000)
    expect(page.get_by_role("progressbar")).to_be_visible()
    expect(log.locator(".ev-stdout").first).to_be_visible()
    screenshot("run-live")
    page.get_by_text("Cancel run", exact=True).click()
    page.get_by_role("button", name="Yes, cancel run").click()
    badge = page.locator(".summary-status .badge")
    expect(badge).to_have_text(re.compile("Cancelling|Cancelled"))
    expect(badge).to_have_text("Cancelled", timeout=30_000)
    expect(log.locator(".ev-run-cancelled")).to_have_count(1)
    expect(log).to_contain_text("cancellation requested: stopping after")
    expect(page.locator("#log-poller")).to_have_count(0)  # finished: the log stopped polling
    assert Run.objects.get(pk=run.pk).status == "cancelled"


@pytest.mark.worker
def test_rerun_a_finished_run(live_server, page, sign_in, people, worker, project, screenshot):
    run = create_run(
        project, target="task:sync-data", input={"limit": 2}, config={"batchSize": 7}
    ).run
    sign_in(people["operator"], f"/p/acme/runs/{run.pk}/")
    expect(page.locator(".summary-status .badge")).to_have_text("Completed", timeout=20_000)
    page.get_by_role("link", name="Re-run").click()
    expect(page.get_by_text("Re-running")).to_be_visible()
    expect(page.get_by_label("Limit")).to_have_value("2")
    expect(page.get_by_label("Config (JSON)")).to_have_value(re.compile(r'"batchSize": 7'))
    screenshot("launch-rerun")
    page.get_by_role("button", name="Launch run").click()
    expect(page).not_to_have_url(re.compile(run.pk))
    expect(page.locator(".summary-status .badge")).to_have_text("Completed", timeout=20_000)
    expect(page.locator("#event-log")).to_contain_text("batches of 7")
    assert Run.objects.filter(project=project).count() == 2


def test_filter_the_runs_list(live_server, page, sign_in, people, project, screenshot):
    make_run(project, status="completed", target="task:sync-data", name="Nightly sync")
    failed = make_run(
        project,
        status="failed",
        target="task:failing-task",
        name="Broken import",
        error={"message": "upstream said 503", "code": "task_error"},
    )
    make_run(project, status="running", target="task:long-running", name="Big import")
    sign_in(people["operator"], "/p/acme/runs/")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(3)
    screenshot("runs")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(page).to_have_url(re.compile(r"status=failed"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Broken import")
    expect(rows.first).to_contain_text("Failed")
    page.reload()  # filters live in the URL
    expect(page.get_by_label("Status")).to_have_value("failed")
    expect(rows).to_have_count(1)
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Search").fill("nightly")
    page.get_by_label("Search").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Nightly sync")
    page.goto(f"{live_server.url}/p/acme/")
    expect(page.get_by_role("heading", name="Recent failures")).to_be_visible()
    expect(page.get_by_text("upstream said 503")).to_be_visible()
    screenshot("overview")
    assert failed.pk


def test_an_outsider_gets_404(live_server, page, sign_in, people, project, screenshot):
    run = make_run(project, status="completed")
    sign_in(people["outsider"])
    expect(page.get_by_role("heading", name="Outsider Inc")).to_be_visible()
    for path in ("/p/acme/", f"/p/acme/runs/{run.pk}/", "/p/acme/tasks/onboard-customer/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 404
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    screenshot("not-found")


def test_tokens_page_shows_the_secret_once(live_server, page, sign_in, people, project, screenshot):
    sign_in(people["admin"], "/p/acme/tokens/")
    page.get_by_label("Name").fill("CI deploys")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_text("shown only this once")).to_be_visible()
    secret = page.locator("#new-secret").input_value()
    assert ApiToken.objects.authenticate(secret) is not None
    screenshot("tokens")
    page.get_by_text("Revoke", exact=False).first.click()
    page.get_by_role("button", name="Yes, revoke").click()
    expect(page.get_by_text("revoked. Clients using it now get 401.")).to_be_visible()
    assert ApiToken.objects.authenticate(secret) is None


def test_login_page(live_server, page, screenshot, db):
    page.goto(f"{live_server.url}/p/acme/")
    expect(page.get_by_role("heading", name="Sign in to Studio")).to_be_visible()
    screenshot("login")
