"""Chromium set-up and sign-in, shared with the dashboard's browser tests."""

from tests.dashboard.browser.conftest import (  # noqa: F401
    browser_context_args,
    browser_type_launch_args,
    screenshot,
    sign_in,
)
