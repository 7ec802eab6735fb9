from __future__ import annotations

import pytest

from runs import service
from runs.models import Run
from tests.workers import TEST_TASKS, wait_for


@pytest.fixture(autouse=True)
def test_tasks(settings):
    """Engine tests run the task files in tests/task_files, in this process and in workers."""
    settings.STUDIO_TASKS_DIR = TEST_TASKS
    return TEST_TASKS


@pytest.fixture
def start_test_worker(start_worker):
    def start(**kwargs):
        return start_worker(tasks_dir=TEST_TASKS, **kwargs)

    return start


@pytest.fixture
def create(project):
    def create(task_id: str, **kwargs) -> Run:
        return service.create_run(project, target=f"task:{task_id}", **kwargs).run

    return create


def wait_status(run: Run, *statuses: str, timeout: float = 20) -> Run:
    def reached():
        run.refresh_from_db()
        return run.status in statuses

    wait_for(reached, timeout, message=f"{run.pk} to reach {'/'.join(statuses)} (is {run.status})")
    return run


def event_types(run: Run) -> list[str]:
    return list(run.events.order_by("id").values_list("event_type", flat=True))
