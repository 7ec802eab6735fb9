"""Workflow files are user code: the web and worker processes learn them as data, from a
sandboxed process, like task files. A file that imports Django at module level is a discovery
error for that file alone; `manage.py workflow` (the developer's own machine) loads in-process."""

from __future__ import annotations

import os

import pytest

from runs.orchestration.discovery import discover_workflows

GOOD = """
from runs.workflows import workflow

@workflow(name="Nap")
def build(wf):
    wf.sleep("nap", seconds=1)
"""

# Where this file is imported decides what it sees: a build function that runs in Studio's
# own process could reach Django and Studio's settings.
PROBE = """
import os
from runs.workflows import workflow

@workflow(name="Probe", description=str(os.getpid()))
def build(wf):
    wf.sleep("nap", seconds=1)
"""

DJANGO = """
from django.conf import settings  # not for definition files: a discovery error
from runs.workflows import workflow

@workflow(name="Bad")
def build(wf):
    wf.sleep("nap", seconds=1)
"""


@pytest.fixture
def flows(tmp_path, settings):
    settings.STUDIO_WORKFLOWS_DIR = tmp_path
    (tmp_path / "nap.py").write_text(GOOD)
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "bad.py").write_text(DJANGO)
    return tmp_path


def test_workflow_files_are_imported_outside_studios_process(flows):
    found = discover_workflows(flows)
    assert set(found.workflows) == {"nap", "probe"}
    assert found.get("probe").description != str(os.getpid())
    errors = {e.path.rsplit("/", 1)[-1]: e.message for e in found.errors}
    assert list(errors) == ["bad.py"] and "django" in errors["bad.py"].lower()


def test_the_local_cli_loads_them_in_process(flows):
    found = discover_workflows(flows, in_process=True)
    assert found.get("probe").description == str(os.getpid())
    assert "bad" in found.workflows  # Django is importable here: the developer's own machine
