"""The shipped examples in workflows/ load and run out of the box."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

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
