"""Headless Debian chromium for the dashboard's browser tests, plus login and screenshot helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are fine.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": LAPTOP}


@pytest.fixture
def sign_in(page, live_server):
    """sign_in(user) logs in through the real login form."""
    from tests.dashboard.conftest import PASSWORD

    def _sign_in(user, next_path: str = "/"):
        page.goto(f"{live_server.url}/accounts/login/?next={next_path}")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        return page

    return _sign_in


@pytest.fixture
def screenshot(page):
    """screenshot(name): save the page at laptop and phone widths under test-artifacts/screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def _shot(name: str):
        page.evaluate("window.scrollTo(0, 0)")  # the sticky header belongs at the top
        page.screenshot(path=str(SCREENSHOTS / f"{name}-laptop.png"), full_page=True)
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
        page.set_viewport_size(LAPTOP)

    return _shot
