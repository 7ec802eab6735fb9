"""Discovery as the web and worker see it: task files imported only in a sandboxed process,
each in a fork of its own, and handed back as data."""

from __future__ import annotations

import pytest

from runs.definitions import TaskRegistry, definition_from_data
from runs.process.discover import LOADERS
from runs.sandboxing import discovery_loader, load_sandboxed
from tests.foundation.helpers import SIMPLE_TASK


@pytest.fixture
def tasks_dir(tmp_path, settings):
    root = tmp_path / "tasks"
    root.mkdir()
    settings.STUDIO_TASKS_DIR = root
    return root


def sandboxed(root):
    return TaskRegistry(root, discovery_loader("tasks", definition_from_data))


def test_definitions_come_back_as_data_without_code(tasks_dir):
    (tasks_dir / "good.py").write_text(
        "from runs.definitions import task\n\n"
        "@task(name='Good', limits={'memory_mb': 64}, network=False, timeout_seconds=5,\n"
        "      reuse_process=True)\n"
        "async def run(ctx):\n    return 1\n"
    )
    (tasks_dir / "plain.py").write_text(SIMPLE_TASK)
    found = sandboxed(tasks_dir).discover()
    good = found.get("good")
    assert good.run is None
    assert (good.name, good.limits, good.network, good.timeout_seconds, good.reuse_process) == (
        "Good",
        {"memory_mb": 64},
        False,
        5,
        True,
    )
    assert found.get("plain").reuse_process is False
    assert good.path == str(tasks_dir / "good.py")


def test_a_file_that_breaks_its_process_fails_alone(tasks_dir):
    (tasks_dir / "good.py").write_text(SIMPLE_TASK)
    (tasks_dir / "exits.py").write_text("import os\nos._exit(3)\n")
    (tasks_dir / "djangoish.py").write_text(
        "from django.conf import settings\nfrom runs.definitions import task\n\n"
        "@task\ndef run(ctx):\n    return settings.SECRET_KEY\n"
    )
    (tasks_dir / "patcher.py").write_text(
        "import json\nfrom runs.definitions import task\n"
        "json.dumps = lambda *a, **k: 'garbage'\n\n@task(name='Patcher')\ndef run(ctx):\n    return 1\n"
    )
    found = sandboxed(tasks_dir).discover()
    assert sorted(found.tasks) == ["good", "patcher"]
    assert found.get("good").name != "garbage"
    errors = {e.path.rsplit("/", 1)[-1]: e.message for e in found.errors}
    assert errors["exits.py"] == "importing it ended its process (exit code 3)"
    assert "ImportError" in errors["djangoish.py"] and "django" in errors["djangoish.py"]


def test_only_changed_files_go_to_the_sandbox_again(tasks_dir, monkeypatch):
    (tasks_dir / "a.py").write_text(SIMPLE_TASK)
    (tasks_dir / "b.py").write_text(SIMPLE_TASK)
    batches = []
    loader = discovery_loader("tasks", definition_from_data)

    def counting(root, items):
        batches.append(sorted(p.name for p, _ in items))
        return loader(root, items)

    registry = TaskRegistry(tasks_dir, counting)
    registry.discover()
    registry.discover()
    (tasks_dir / "b.py").write_text(SIMPLE_TASK + "\n# changed\n")
    assert set(registry.discover().tasks) == {"a", "b"}
    assert batches == [["a.py", "b.py"], ["b.py"]]


def test_kinds_are_a_registry_of_django_free_loaders(tasks_dir):
    assert "tasks" in LOADERS
    (tasks_dir / "t.py").write_text(SIMPLE_TASK)
    [(path, data)] = load_sandboxed("tasks", tasks_dir, [(tasks_dir / "t.py", "t")]).items()
    assert data["id"] == "t" and "run" not in data
