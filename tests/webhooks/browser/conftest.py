"""Reuse the dashboard's Chromium setup (Debian chromium, sign_in, screenshot)."""

from tests.dashboard.browser.conftest import (  # noqa: F401
    browser_context_args,
    browser_type_launch_args,
    screenshot,
    sign_in,
)
