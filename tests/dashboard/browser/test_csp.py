"""The pages pass their Content-Security-Policy: no inline script or style anywhere, so the
policy needs no 'unsafe-inline' and Chromium reports no violation."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from playwright.sync_api import expect

from tests.dashboard.conftest import log, make_run, make_user

pytestmark = [pytest.mark.browser]

# Added before any page script runs (through DevTools, so the CSP does not apply to it).
COLLECT_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile + ":" + e.lineNumber);
});
"""


@pytest.fixture
def violations(page):
    """Every CSP violation the browser reports, by the event and on the console."""
    seen: list[str] = []
    page.add_init_script(COLLECT_VIOLATIONS)
    page.on(
        "console",
        lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None,
    )

    def collect() -> list[str]:
        return seen + page.evaluate("window.__csp || []")

    return collect


def visit(page, url: str, violations) -> None:
    response = page.goto(url)
    assert response.status < 400, (url, response.status)
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, url
    page.wait_for_load_state("load")
    assert violations() == [], url


def test_the_main_pages_report_no_csp_violation(live_server, page, sign_in, project, violations):
    root = make_user("root", project, "admin", is_staff=True, is_superuser=True)
    running = make_run(
        project,
        status="running",
        events=[log("hello"), ("progress", {"current": 3, "total": 12, "message": "item 3"})],
    )
    done = make_run(project, status="completed", output={"ok": True})

    sign_in(root, "/p/acme/")
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()
    assert violations() == []
    base = live_server.url
    for path in (
        "/p/acme/runs/",
        f"/p/acme/runs/{done.pk}/",
        "/p/acme/tasks/",
        "/p/acme/tokens/",
        "/admin/",
        "/admin/runs/run/",
        f"/admin/runs/run/{quote(done.pk)}/change/",
        "/admin/runs/apitoken/add/",
        "/admin/runs/project/add/",
        f"/admin/runs/project/{project.pk}/change/",
        f"/admin/auth/user/{root.pk}/change/",
        "/admin/runs/runevent/",
        "/admin/axes/accessattempt/",
        "/api/docs",
    ):
        visit(page, base + path, violations)

    # A live run page: the progress bar is drawn and htmx polls (and swaps) its log.
    with page.expect_response(lambda r: "/events/" in r.url):
        visit(page, f"{base}/p/acme/runs/{running.pk}/", violations)
    expect(page.get_by_role("progressbar", name="Progress")).to_be_visible()

    # An htmx swap on the launch form, and the token secret page.
    visit(page, f"{base}/p/acme/tasks/onboard-customer/", violations)
    page.get_by_role("button", name="+ Add item").click()
    expect(page.get_by_label("Tags 1")).to_be_visible()
    visit(page, f"{base}/p/acme/tokens/", violations)
    page.get_by_label("Name").fill("ci")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_text("Copy it now")).to_be_visible()
    # The admin's own scripts at work: the slug filled in from the name, related-object popups.
    visit(page, f"{base}/admin/runs/project/add/", violations)
    page.get_by_label("Name:").press_sequentially("Globex Corp")
    expect(page.get_by_label("Slug:")).to_have_value("globex-corp")
    assert violations() == []
    page.context.clear_cookies()  # signed out: the sign-in pages themselves
    for path in ("/accounts/login/", "/admin/login/"):
        visit(page, base + path, violations)


def test_the_collector_does_see_a_violation(live_server, page, sign_in, project, violations):
    """The control experiment: an inline style is caught, so silence above means something."""
    sign_in(make_user("vera", project, "viewer"), "/p/acme/")
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<style>body{color:red}</style>')")
    page.wait_for_function("window.__csp.length > 0")
    assert any("style-src" in v for v in violations())
