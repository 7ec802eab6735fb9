"""Shared fixtures. Feature folders (tests/api, tests/dashboard, tests/engine, ...) add their own."""

from __future__ import annotations

import pytest

from runs.models import Project
from tests.workers import WorkerProcess


@pytest.fixture
def project(db) -> Project:
    return Project.objects.create(slug="acme", name="Acme")


@pytest.fixture
def other_project(db) -> Project:
    return Project.objects.create(slug="outsider", name="Outsider Inc")


@pytest.fixture
def start_worker(transactional_db):
    """Factory: start real `manage.py run_huey` consumers (stopped at the end of the test).

    start_worker(tasks_dir=..., workers=2, STUDIO_SOME_SETTING=value) -> WorkerProcess
    """
    started: list[WorkerProcess] = []

    def start(**kwargs) -> WorkerProcess:
        worker = WorkerProcess(**kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
        # Shown by pytest only when the test failed: what the worker said while it ran.
        print(f"--- worker {worker.pid} log ---\n{worker.log}")


@pytest.fixture
def worker(start_worker) -> WorkerProcess:
    """A real consumer executing runs of the tasks in ./tasks against the test database."""
    return start_worker()


@pytest.fixture(autouse=True, scope="session")
def _empty_queue_after_session():
    yield
    from huey.contrib.djhuey import HUEY

    HUEY.storage.flush_all()
