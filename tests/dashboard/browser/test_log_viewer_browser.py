"""The log viewer and the live run page in Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from runs.models import Run, RunEvent
from tests.dashboard.conftest import make_run, make_user

pytestmark = [pytest.mark.browser]


@pytest.fixture
def viewer(project):
    return make_user("vera", project, "viewer")


def _long_run(project, lines=3000, status="running", **fields):
    run = make_run(project, status=status, name="Big import", **fields)
    RunEvent.objects.bulk_create(
        RunEvent(
            run_id=run.pk,
            event_type="log",
            payload={
                "stream": "stderr" if i % 10 == 0 else "stdout",
                "line": f"\x1b[32mPASSED\x1b[0m test_{i}" if i % 100 == 5 else f"line {i}",
            },
        )
        for i in range(lines)
    )
    RunEvent.objects.create(
        run_id=run.pk, event_type="progress", payload={"current": 3, "total": 10, "message": "x"}
    )
    return run


def test_search_jumps_between_matches_and_filters_apply(
    live_server, page, sign_in, project, viewer, screenshot
):
    run = _long_run(project)
    sign_in(viewer, f"/p/acme/runs/{run.pk}/")
    log = page.locator("#event-log")
    expect(log).to_contain_text("line 2999")
    page.keyboard.press("/")
    expect(page.get_by_label("Search the log")).to_be_focused()
    page.keyboard.type("line 12")
    page.keyboard.press("Enter")
    expect(page.get_by_text("1 of 110")).to_be_visible()
    target = log.locator(".ev-target")
    expect(target).to_contain_text("line 12")
    expect(target).to_be_in_viewport()
    expect(page).to_have_url(re.compile(r"q=line"))
    page.get_by_role("link", name="Next match").click()
    expect(page.get_by_text("2 of 110")).to_be_visible()
    expect(log.locator(".ev-target")).to_contain_text("line 120")
    page.get_by_role("link", name="Previous match").click()
    expect(page.get_by_text("1 of 110")).to_be_visible()
    page.get_by_role("link", name="Previous match").click()  # wraps round to the last
    expect(page.get_by_text("110 of 110")).to_be_visible()
    expect(log.locator(".ev-target")).to_contain_text("line 1299")
    screenshot("log-search")

    page.get_by_label("Search the log").fill("")
    page.get_by_label("Search the log").press("Enter")
    page.get_by_label("stdout").uncheck()  # applies on change
    expect(page).to_have_url(re.compile(r"show=stderr"))
    expect(log.locator(".ev-stdout")).to_have_count(0)
    expect(log.locator(".ev-stderr").last).to_contain_text("line 2990")
    page.get_by_label("Studio events").uncheck()
    page.get_by_role("checkbox", name="progress").uncheck()
    expect(log.locator(".ev-progress")).to_have_count(0)
    screenshot("log-filtered")


def test_ansi_colours_render_and_the_raw_log_strips_them(
    live_server, page, sign_in, project, viewer
):
    run = _long_run(project, lines=300, status="completed", logs="\x1b[32mPASSED\x1b[0m t\n")
    sign_in(viewer, f"/p/acme/runs/{run.pk}/")
    green = page.locator("#event-log .ansi-green").last
    expect(green).to_have_text("PASSED")
    assert green.evaluate("el => getComputedStyle(el).color") == "rgb(126, 226, 160)"
    expect(page.locator("#event-log")).not_to_contain_text("[32m")
    page.get_by_role("link", name="Raw log").click()
    raw = page.locator("body").inner_text()
    assert "PASSED test_5\n" in raw and "\x1b" not in raw and "[32m" not in raw


def test_a_line_link_opens_around_the_line_highlighted(
    live_server, page, sign_in, project, viewer, screenshot
):
    run = _long_run(project)
    line = RunEvent.objects.get(run=run, payload__line="line 700")
    sign_in(viewer, f"/p/acme/runs/{run.pk}/")
    # A link to a line far outside the opening window (only a hash, as a chat message has it).
    page.goto(f"{live_server.url}/p/acme/runs/{run.pk}/#ev-{line.pk}")
    target = page.locator(f"#ev-{line.pk}")
    expect(target).to_have_class(re.compile("ev-target"))
    expect(target).to_be_in_viewport()
    expect(page).to_have_url(re.compile(rf"around={line.pk}#ev-{line.pk}$"))
    # Not stolen by a scroll to the bottom.
    assert page.locator("#event-log").evaluate(
        "el => el.scrollTop + el.clientHeight < el.scrollHeight - 40"
    )
    screenshot("log-line-link")
    other = page.locator("#event-log .ev").nth(5)
    other.hover()
    other.get_by_role("button", name=re.compile("Copy link")).click()
    expect(other.get_by_role("button", name=re.compile("Copy link"))).to_have_text("Copied")
    copied = other.get_by_role("button", name=re.compile("Copy link")).get_attribute("data-copied")
    event_id = other.get_attribute("id").removeprefix("ev-")
    assert copied == f"{live_server.url}/p/acme/runs/{run.pk}/?around={event_id}#ev-{event_id}"


def test_follow_is_on_at_the_bottom_and_off_when_scrolling_up(
    live_server, page, sign_in, project, viewer
):
    run = _long_run(project, lines=400)
    sign_in(viewer, f"/p/acme/runs/{run.pk}/")
    follow = page.locator("#log-follow")
    expect(follow).to_have_attribute("aria-pressed", "true")
    expect(follow).to_be_visible()
    page.locator("#event-log").evaluate("el => { el.scrollTop = 0; }")
    expect(follow).to_have_attribute("aria-pressed", "false")
    expect(follow).to_have_text("Follow")
    RunEvent.objects.create(
        run_id=run.pk, event_type="log", payload={"stream": "stdout", "line": "fresh line"}
    )
    expect(page.locator("#event-log")).to_contain_text("fresh line")
    assert page.locator("#event-log").evaluate("el => el.scrollTop") < 50  # stayed put
    follow.click()
    expect(follow).to_have_attribute("aria-pressed", "true")
    RunEvent.objects.create(
        run_id=run.pk, event_type="log", payload={"stream": "stdout", "line": "newest line"}
    )
    expect(page.locator("#event-log .ev").last).to_contain_text("newest line")
    page.wait_for_function(
        "() => { const l = document.getElementById('event-log');"
        " return l.scrollTop + l.clientHeight >= l.scrollHeight - 5; }"
    )


def test_download_while_running_has_the_whole_log(live_server, page, sign_in, project, viewer):
    run = _long_run(project, lines=2500)
    sign_in(viewer, f"/p/acme/runs/{run.pk}/")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download").click()
    download = info.value
    assert download.suggested_filename == f"{run.pk}.log"
    lines = open(download.path()).read().splitlines()
    assert len(lines) == 2500 and lines[5] == "PASSED test_5"


def test_the_live_page_marks_the_tab_and_settles_when_the_run_ends(
    live_server, page, sign_in, project, viewer, screenshot
):
    run = _long_run(project, lines=20)
    sign_in(viewer, f"/p/acme/runs/{run.pk}/")
    expect(page).to_have_title(re.compile(r"^● Big import"))
    icon = page.locator("link[rel=icon]")
    expect(icon).to_have_attribute("href", re.compile("favicon-running.svg"))
    elapsed = page.locator("[data-elapsed-since]")
    first = elapsed.inner_text()
    expect(elapsed).not_to_have_text(first, timeout=3000)  # it ticks
    expect(page.get_by_role("link", name="Raw log")).to_have_count(0)
    screenshot("run-live-header")
    # The run ends (as the worker would write it): the page settles without a reload.
    Run.objects.filter(pk=run.pk).update(status="completed", duration_ms=5300, output={"ok": True})
    RunEvent.objects.create(run_id=run.pk, event_type="run.completed", payload={})
    expect(page.locator(".summary-status .badge")).to_have_text("Completed")
    expect(page).to_have_title(re.compile(r"^✓ Big import"))
    expect(icon).to_have_attribute("href", re.compile("favicon-completed.svg"))
    expect(page.get_by_role("link", name="Raw log")).to_be_visible()
    expect(page.locator("#log-poller")).to_have_count(0)
    expect(page.locator(".progress-wrap")).to_have_class(re.compile("progress-completed"))
    expect(page.locator("progress")).to_have_attribute("value", "10")
    expect(page.locator("#run-result")).to_contain_text("ok")
    screenshot("run-settled")


def test_copy_buttons_and_the_json_tree(live_server, page, sign_in, project, viewer, screenshot):
    run = make_run(
        project,
        status="completed",
        input={"customer": {"name": "Globex", "tags": ["a", "b"]}},
        output={"synced": 3},
    )
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(viewer, f"/p/acme/runs/{run.pk}/")
    page.get_by_role("button", name="Copy run id").click()
    assert page.evaluate("navigator.clipboard.readText()") == run.pk
    page.get_by_role("button", name="Copy output").click()
    assert page.evaluate("navigator.clipboard.readText()") == '{\n  "synced": 3\n}'
    page.get_by_text("Details", exact=True).click()
    tree = page.locator("#json-tree-input")
    expect(tree).to_contain_text("Globex")
    tree.get_by_text("customer").click()  # folds
    expect(tree.get_by_text("Globex")).to_be_hidden()
    page.locator(".details-data .json-raw summary").first.click()
    expect(page.locator("#json-raw-input")).to_contain_text('"name": "Globex"')
    screenshot("run-details")


def test_a_run_read_away_from_its_tail_still_settles(live_server, page, sign_in, project, viewer):
    run = _long_run(project, lines=600)
    sign_in(viewer, f"/p/acme/runs/{run.pk}/?q=line+12")
    expect(page.get_by_text("1 of 11")).to_be_visible()
    RunEvent.objects.create(
        run_id=run.pk, event_type="log", payload={"stream": "stdout", "line": "late line"}
    )
    Run.objects.filter(pk=run.pk).update(status="failed", error={"message": "gave up"})
    RunEvent.objects.create(
        run_id=run.pk, event_type="run.failed", payload={"error": {"message": "gave up"}}
    )
    expect(page.locator(".summary-status .badge")).to_have_text("Failed", timeout=10_000)
    expect(page).to_have_title(re.compile(r"^✗ Big import"))
    expect(page.locator("#event-log")).not_to_contain_text("late line")  # the window stays put
    expect(page.get_by_text("1 of 11")).to_be_visible()


@pytest.mark.worker
def test_a_real_failure_reads_well(live_server, page, sign_in, project, viewer, worker, screenshot):
    from runs.service import create_run

    run = create_run(project, target="task:failing-task", input={}).run
    sign_in(viewer, f"/p/acme/runs/{run.pk}/")
    expect(page.locator(".summary-status .badge")).to_have_text("Failed", timeout=20_000)
    headline = "UpstreamUnavailable: cannot sync: the upstream API answered 503"
    expect(page.locator(".error-headline")).to_have_text(headline)
    expect(page.get_by_role("heading", name="UpstreamUnavailable")).to_be_visible()
    traceback = page.locator(".tb")
    expect(traceback).to_contain_text('File "tasks/failing-task.py"')
    expect(traceback).to_contain_text("failing-task.UpstreamUnavailable")
    expect(traceback.get_by_text("1 Studio frame")).to_be_visible()
    expect(traceback.get_by_text("runs/process/runner.py")).to_be_hidden()  # folded
    assert not re.search(r"studio_tasks\.\w+_[0-9a-f]{8}", traceback.inner_text())
    marker = traceback.locator("pre", has_text="^^^").first
    assert marker.evaluate("el => getComputedStyle(el).whiteSpace") == "pre"
    expect(page).to_have_title(re.compile(r"^✗ "))
    screenshot("run-failed")
