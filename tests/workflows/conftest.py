from __future__ import annotations

from pathlib import Path

import pytest

from runs import service
from runs.models import Run
from runs.orchestration.engine import advance
from tests.api.conftest import (  # noqa: F401  (the API tests' token fixtures, shared)
    api,
    outsider_secret,
    read_only_secret,
    secret,
)
from tests.dashboard.conftest import (  # noqa: F401  (the dashboard personas, shared)
    login,
    operator,
    outsider,
    owner,
    viewer,
)
from tests.workers import wait_for

FILES = Path(__file__).resolve().parent / "files"
TASKS = FILES / "tasks"
WORKFLOWS = FILES / "workflows"


@pytest.fixture(autouse=True)
def workflow_files(settings):
    settings.STUDIO_TASKS_DIR = TASKS
    settings.STUDIO_WORKFLOWS_DIR = WORKFLOWS


@pytest.fixture
def start_wf_worker(start_worker):
    def start(**kwargs):
        kwargs.setdefault("STUDIO_WORKFLOWS_DIR", str(WORKFLOWS))
        return start_worker(tasks_dir=TASKS, **kwargs)

    return start


@pytest.fixture
def launch(project):
    def launch(workflow_id: str, input: dict | None = None, **kwargs) -> Run:
        run = service.create_run(
            project, target=f"workflow:{workflow_id}", input=input, **kwargs
        ).run
        return run

    return launch


def steps(run: Run) -> dict:
    return {s.step_id: s for s in run.steps.order_by("position")}


def statuses(run: Run) -> dict[str, str]:
    return {sid: s.status for sid, s in steps(run).items()}


def children(run: Run, step_id: str) -> list[Run]:
    ids = run.steps.get(step_id=step_id).child_run_ids
    found = {r.pk: r for r in Run.objects.filter(pk__in=ids)}
    return [found[i] for i in ids]


def finish(child: Run, status: str = "completed", output=None, error=None) -> None:
    """Stand in for a worker: end a child run (in-process tests only), then advance its parent."""
    Run.objects.filter(pk=child.pk).update(
        status=status,
        output=output,
        error=error
        or (
            {"message": "it broke", "code": "task_error", "detail": None}
            if status == "failed"
            else None
        ),
    )
    advance(child.parent_run_id)


def wait_run(run: Run, *statuses_: str, timeout: float = 30) -> Run:
    def reached():
        run.refresh_from_db()
        return run.status in statuses_

    wait_for(reached, timeout, message=f"{run.pk} to reach {'/'.join(statuses_)} (is {run.status})")
    return run
