"""The shipped examples in workflows/ load and run out of the box."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from runs.models import Run
from runs.orchestration.discovery import discover_workflows
from tests.workers import ROOT

EXAMPLES = {"regional-report", "sync-if-big", "approved-sync", "cool-down", "nightly"}


@pytest.fixture(autouse=True)
def shipped(settings):
    settings.STUDIO_TASKS_DIR = ROOT / "tasks"
    settings.STUDIO_WORKFLOWS_DIR = ROOT / "workflows"


def test_every_example_loads():
    found = discover_workflows()
    assert found.errors == []
    assert EXAMPLES <= set(found.workflows)
    kinds = {s["kind"] for d in found.workflows.values() for s in d.graph["steps"]}
    assert {"task", "map", "workflow", "sleep", "approval"} <= kinds


@pytest.mark.parametrize(
    "workflow_id, output",
    [
        ("regional-report", lambda o: o["total"] == sum(r["orders"] for r in o["per_region"])),
        ("nightly", lambda o: isinstance(o["orders"], int)),
        ("sync-if-big", lambda o: o["small-sync"] == {"synced": 1, "skipped": 4}),
    ],
)
def test_examples_run_locally(workflow_id, output, capsys):
    call_command("workflow", workflow_id)
    assert output(json.loads(capsys.readouterr().out.splitlines()[-1]))


@pytest.mark.worker
def test_the_nightly_example_runs_on_a_worker(start_worker, project):
    from runs import service

    from .conftest import wait_run

    start_worker(STUDIO_WORKFLOWS_DIR=str(ROOT / "workflows"))
    run = service.create_run(project, target="workflow:nightly").run
    wait_run(run, "completed", "failed", timeout=60)
    assert run.status == "completed", run.error
    sub = Run.objects.get(parent_run=run, kind="workflow")
    assert run.output == {"orders": sub.output["total"]}
    assert (
        Run.objects.filter(root_run=run).count() == 1 + 1 + 1 + 2 + 1
    )  # sub, regions, 2 counts, sum, sync
