"""Helpers for the foundation tests: task files in a temporary directory, and the environment of
a `manage.py` subprocess that sees only what a test gives it."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_TASKS = ROOT / "tasks"

SIMPLE_TASK = """
from runs.definitions import task

@task
def run(ctx):
    return "ok"
"""


def write_task(root: Path, relative: str, source: str = SIMPLE_TASK) -> Path:
    """Write a task file under `root` (creating folders) and return its path."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def rewrite(path: Path, source: str) -> None:
    """Change a file the way an editor would, with an mtime surely later than the last one.

    File systems keep mtimes at a coarse granularity, so two writes within the same tick can
    look unchanged; moving the mtime forward avoids that without sleeping.
    """
    before = path.stat().st_mtime_ns
    path.write_text(textwrap.dedent(source))
    later = before + 2_000_000_000
    os.utime(path, ns=(later, later))


def subprocess_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """A clean environment for `manage.py` or `django.setup()` in a child process.

    Studio's own variables from the test run are dropped, and var/ points at `tmp_path`, so a
    child never reads or writes the developer's database, queue or secret key.
    """
    studio_names = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "PORT", "PYTHONUNBUFFERED"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in studio_names and not k.startswith(("STUDIO_", "DJANGO_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="studio.settings",
        SECRET_KEY="foundation-tests-secret-key",
        STUDIO_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'var' / 'unused.sqlite3'}",
    )
    env.update(overrides)
    return env
