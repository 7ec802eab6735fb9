"""Real Huey consumer processes for tests: `manage.py run_huey` against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from runs.process.child import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_TASKS = ROOT / "tasks"
TEST_TASKS = Path(__file__).resolve().parent / "task_files"


def database_url() -> str:
    """DATABASE_URL naming the database the tests use (the test database, once set up)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return (
            f"sqlite:///{db['NAME']}"
            if str(db["NAME"]).startswith("/")
            else f"sqlite:///{ROOT / db['NAME']}"
        )
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05, message: str = "condition"):
    """Poll until `predicate()` is truthy and return its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class WorkerProcess:
    def __init__(self, tasks_dir: Path = SHIPPED_TASKS, workers: int = 2, **env: object):
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "studio.settings",
            "DATABASE_URL": database_url(),
            "STUDIO_TASKS_DIR": str(tasks_dir),
            "STUDIO_QUEUE_NAME": settings.HUEY["name"],
            "STUDIO_WORKERS": str(workers),
            "STUDIO_SWEEP_SECONDS": "0.5",
            "STUDIO_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **{k: str(v) for k, v in env.items()},
        }
        if "filename" in settings.HUEY:
            self.env["STUDIO_HUEY_FILE"] = settings.HUEY["filename"]
        if settings.REDIS_URL:
            self.env["REDIS_URL"] = settings.REDIS_URL
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_huey", "--skip-checks"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=lambda: die_with_parent(signal.SIGKILL),  # no orphans if pytest is killed
        )
        threading.Thread(target=self._collect, daemon=True).start()
        wait_for(
            lambda: "worker ready" in self.log or self.proc.poll() is not None,
            30,
            message="worker start",
        )
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited at start:\n{self.log}")

    def _collect(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)

    @property
    def log(self) -> str:
        return "".join(self.output)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def terminate(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        try:
            self.terminate(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
