from __future__ import annotations

import pytest

from .conftest import make_run

pytestmark = pytest.mark.django_db


def test_it_lists_every_discovered_task(login, viewer):
    html = login(viewer).get("/p/acme/tasks/").content.decode()
    for name in (
        "Onboard customer",
        "Long-running import",
        "Failing task",
        "Sync external data",
        "Weekly report",
    ):
        assert name in html
    assert "reports-weekly" in html
    assert "Schedulable" in html


def test_it_shows_each_tasks_last_run(login, viewer, project, other_project):
    make_run(project, status="failed", target="task:failing-task")
    make_run(other_project, status="completed", target="task:sync-data")
    html = login(viewer).get("/p/acme/tasks/").content.decode()
    assert "badge-failed" in html
    assert "badge-completed" not in html  # the other project's run is not ours
    assert "Never run" in html


def test_discovery_errors_are_shown_to_admins(login, owner, viewer, settings, tmp_path):
    (tmp_path / "broken.py").write_text("def run(ctx):\n  return (\n")
    settings.STUDIO_TASKS_DIR = tmp_path
    html = login(owner).get("/p/acme/tasks/").content.decode()
    assert "tasks/broken.py" in html or "broken.py" in html
    assert "syntax error" in html
    html = login(viewer).get("/p/acme/tasks/").content.decode()
    assert "syntax error" not in html
    assert "could not be loaded" in html


def test_empty_tasks_folder_says_what_to_do(login, viewer, settings, tmp_path):
    settings.STUDIO_TASKS_DIR = tmp_path
    html = login(viewer).get("/p/acme/tasks/").content.decode()
    assert "No tasks yet" in html


def test_launch_buttons_only_for_operators(login, viewer, operator):
    assert ">Launch<span" not in login(viewer).get("/p/acme/tasks/").content.decode()
    assert ">Launch<span" in login(operator).get("/p/acme/tasks/").content.decode()


def test_a_task_page_says_when_its_runs_reuse_a_process(login, viewer, settings, tmp_path):
    for name, option in (("reused", "reuse_process=True"), ("plain", "")):
        (tmp_path / f"{name}.py").write_text(
            f"from runs.definitions import task\n\n@task({option})\ndef run(ctx):\n    return 1\n"
        )
    settings.STUDIO_TASKS_DIR = tmp_path
    client = login(viewer)
    assert "Reuses its process" in client.get("/p/acme/tasks/reused/").content.decode()
    assert "Reuses its process" not in client.get("/p/acme/tasks/plain/").content.decode()
