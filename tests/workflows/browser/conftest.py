from tests.dashboard.browser.conftest import *  # noqa: F403  (Chromium settings, sign_in)
