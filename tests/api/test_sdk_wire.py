"""The Python SDK's wire additions against a live Studio: runtime target, start_mode, summary."""

from __future__ import annotations

import pytest

from runs.client import RunsClient, RunsError
from runs.models import Run

from .conftest import make_run

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def runs(live_server, secret):
    with RunsClient(
        api_url=f"{live_server.url}/api", auth_token=secret, project_reference="acme"
    ) as client:
        yield client


def test_it_creates_a_run_on_the_main_branch_with_a_start_mode(runs):
    accepted = runs.create_task_run(
        target="task:sync-data", runtime_target_kind="main_branch", start_mode="immediate"
    )
    assert accepted.run.runtime_target_kind == "main_branch"
    assert accepted.run.start_mode == "immediate"
    assert runs.get(accepted.run.run_id).start_mode == "immediate"


def test_it_reports_an_unsupported_runtime_target(runs):
    with pytest.raises(RunsError) as caught:
        runs.create_task_run(target="task:sync-data", runtime_target_kind="environment")
    assert caught.value.code == "runtime_target_unsupported"
    assert not Run.objects.exists()


def test_list_summary_leaves_the_big_columns_out(runs, project):
    make_run(project, input={"limit": 1}, logs="hello\n", output={"n": 1}, config={"a": 1})
    (run,) = runs.list(fields="summary").data
    assert (run.input, run.config, run.output, run.logs) == (None, None, None, None)
    (full,) = runs.list().data
    assert full.input == {"limit": 1} and full.logs == "hello\n"
    assert [r.input for r in runs.iter_runs(fields="summary")] == [None]
