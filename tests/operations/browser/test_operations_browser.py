"""Bulk cancel from the runs list and the Workers page, in headless Chromium, with a real worker."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from runs.models import Run, Worker
from runs.service import create_run
from tests.dashboard.conftest import make_user
from tests.workers import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.worker]

SLOW = {"steps": 600, "delay_seconds": 0.1}


def slow_runs(project, n: int) -> list[Run]:
    return [create_run(project, target="task:long-running", input=SLOW).run for _ in range(n)]


def test_bulk_cancel_checked_runs_with_a_confirmation_and_progress(
    live_server, page, sign_in, screenshot, project, worker
):
    operator = make_user("oscar", project, "operator")
    keep, *doomed = slow_runs(project, 3)
    sign_in(operator, "/p/acme/runs/")
    for run in doomed:
        page.get_by_label(f"Select {run.pk}").check()
    screenshot("runs-bulk-selection")
    page.get_by_role("button", name="Cancel…").click()

    expect(page.get_by_role("heading", name="Cancel 2 runs?")).to_be_visible()
    screenshot("bulk-cancel-confirm")
    assert not Run.objects.filter(status="cancelled").exists()
    page.get_by_role("button", name="Yes, cancel 2 runs").click()

    expect(page).to_have_url(re.compile(r"/p/acme/operations/[0-9a-f-]{36}/$"))
    expect(page.get_by_test_id("operation-status")).to_contain_text(
        "Done: 2 of 2 processed", timeout=20_000
    )
    screenshot("bulk-cancel-done")
    wait_for(
        lambda: Run.objects.filter(pk__in=[r.pk for r in doomed], status="cancelled").count() == 2,
        30,
        message="both runs cancelled",
    )
    keep.refresh_from_db()
    assert keep.status in ("pending", "running")
    page.get_by_role("link", name="Back to the runs").click()
    expect(page.locator(f"#row-{doomed[0].pk}")).to_contain_text("Cancelled")


def test_bulk_cancel_all_that_match_a_filter(live_server, page, sign_in, project, worker):
    operator = make_user("oscar", project, "operator")
    runs = slow_runs(project, 3)
    sign_in(operator, "/p/acme/runs/?target=task%3Along-running")
    page.get_by_label(re.compile("All runs that match this filter")).check()
    page.get_by_role("button", name="Cancel…").click()
    expect(page.get_by_role("heading", name="Cancel 3 runs?")).to_be_visible()
    page.get_by_role("button", name="Yes, cancel 3 runs").click()
    expect(page.get_by_test_id("operation-status")).to_contain_text(
        "Done: 3 of 3 processed", timeout=20_000
    )
    wait_for(
        lambda: Run.objects.filter(pk__in=[r.pk for r in runs], status="cancelled").count() == 3,
        30,
        message="all three cancelled",
    )


def test_the_workers_page_shows_the_worker_and_its_run_and_drains_it(
    live_server, page, sign_in, screenshot, project, worker
):
    root = make_user("root", is_superuser=True, is_staff=True)
    run = create_run(
        project, target="task:long-running", input={"steps": 60, "delay_seconds": 0.1}
    ).run
    wait_for(lambda: Run.objects.filter(pk=run.pk, status="running").exists(), 20)
    sign_in(root, "/p/acme/")
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Workers").click()
    live = page.get_by_test_id("live-workers")
    expect(live).to_contain_text(str(worker.pid))
    expect(live).to_contain_text(run.pk)
    screenshot("workers")
    page.locator("summary", has_text="Drain").click()
    page.get_by_role("button", name="Yes, drain").click()
    expect(page.get_by_text("will take no new runs")).to_be_visible()
    assert worker.proc.wait(60) == 0  # it finished its run, then exited
    run.refresh_from_db()
    assert run.status == "completed"
    assert Worker.objects.get(pid=worker.pid).state == "stopped"
