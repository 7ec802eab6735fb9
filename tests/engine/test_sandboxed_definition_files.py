"""Schedule and webhook files are user code too: Studio's processes learn them as data from the
sandboxed discovery process. A file that reaches for Django at module level is a discovery error
for that file alone (in Studio's own process that import would succeed and hand it the settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runs.sandboxing import load_sandboxed

DJANGO_LINE = "from django.conf import settings  # not for definition files\n"

SCHEDULE = """
from runs.schedules import schedule

schedule(interval_seconds=60, target="task:sync-data", name="Every minute")
"""

WEBHOOK = """
webhook = {"target": "task:sync-data", "secret_env": "STUDIO_WEBHOOK_SECRET_DEMO"}
"""


@pytest.mark.parametrize("kind, source", [("schedules", SCHEDULE), ("webhooks", WEBHOOK)])
def test_a_django_import_fails_that_file_alone(tmp_path: Path, settings, kind, source):
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text(source)
    bad.write_text(DJANGO_LINE + source)
    loaded = load_sandboxed(kind, tmp_path, [(good, "good"), (bad, "bad")])
    assert isinstance(loaded[good], dict), loaded[good]
    assert isinstance(loaded[bad], str) and "django" in loaded[bad].lower()
