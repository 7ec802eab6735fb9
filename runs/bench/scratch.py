"""A scratch database and private queue names for one benchmark child process."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings


def _pg_url(db: dict, name: str) -> str:
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


@contextmanager
def scratch_env(tasks: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """The environment of a child that measures against a database made for it, dropped after.

    `tasks` ({file name: source}) replaces the tasks directory; None keeps the configured one."""
    scratch = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    env = {
        **os.environ,
        "STUDIO_QUEUE_NAME": f"studio-bench-{uuid.uuid4().hex[:8]}",
        "STUDIO_HUEY_FILE": str(scratch / "huey.sqlite3"),
        "STUDIO_VAR_DIR": str(scratch),
        "STUDIO_LOG_LEVEL": "WARNING",
    }
    if tasks is not None:
        folder = scratch / "tasks"
        folder.mkdir()
        for name, source in tasks.items():
            (folder / name).write_text(source)
        env["STUDIO_TASKS_DIR"] = str(folder)
        from .workflows import WORKFLOW_FILES

        flows = scratch / "workflows"
        flows.mkdir()
        for name, source in WORKFLOW_FILES.items():
            (flows / name).write_text(source)
        env["STUDIO_WORKFLOWS_DIR"] = str(flows)
    db = settings.DATABASES["default"]
    pg_name = None
    if db["ENGINE"].endswith("postgresql"):
        import psycopg

        pg_name = f"studio_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(_pg_url(db, "postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        env["DATABASE_URL"] = _pg_url(db, pg_name)
    else:
        env["DATABASE_URL"] = f"sqlite:///{scratch / 'bench.sqlite3'}"
    try:
        yield env
    finally:
        if pg_name:
            import psycopg

            with psycopg.connect(_pg_url(db, "postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        shutil.rmtree(scratch, ignore_errors=True)
