"""`manage.py workflows` and `manage.py workflow <id>`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.workers import ROOT

from .conftest import TASKS, WORKFLOWS


def test_workflows_lists_definitions_and_discovery_errors(capsys):
    call_command("workflows")
    out, err = capsys.readouterr()
    assert "chain" in out and "Chain" in out
    assert "broken.py: step 'a': no task with id 'no-such-task'" in err


def test_workflow_runs_locally_printing_steps_and_the_output_last(capsys):
    call_command("workflow", "fanout", input='{"items": [1, 2, 3]}')
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Running workflow: Fan out (fanout)"
    assert "> items (task) started" in out and "< each completed" in out
    assert json.loads(out[-1]) == {"all": [1, 2, 3]}


def test_branches_and_rules_behave_as_in_studio(capsys):
    call_command("workflow", "branch", input='{"big": false}')
    out = capsys.readouterr().out
    assert "- big: skipped (condition)" in out and "< small completed" in out
    call_command("workflow", "rules")
    out = capsys.readouterr().out
    assert "- all_success: skipped" in out and "< one_failed completed" in out


def test_bad_input_and_unknown_workflow_exit_2():
    with pytest.raises(CommandError) as bad:
        call_command("workflow", "chain", input='{"x": "one"}')
    assert bad.value.returncode == 2 and "Invalid --input" in str(bad.value)
    with pytest.raises(CommandError) as unknown:
        call_command("workflow", "nope")
    assert unknown.value.returncode == 2 and "Available workflows" in str(unknown.value)


def test_an_approval_without_a_terminal_fails_clearly_with_exit_1():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "STUDIO_TASKS_DIR": str(TASKS),
        "STUDIO_WORKFLOWS_DIR": str(WORKFLOWS),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "workflow", "gate"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "approval 'review' needs a person: run this on a terminal" in done.stderr
    ok = subprocess.run(
        [sys.executable, "manage.py", "workflow", "chain", "--input", '{"x": 5}'],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.splitlines()[-1]) == {"result": 5}
