"""Task discovery: ids from paths, what is ignored, defaults, broken files, and live pickup."""

from __future__ import annotations

import threading
import time

import pytest

from runs.definitions import LocalContext, TaskRegistry, discover, get_registry
from runs.process.runner import execute
from tests.foundation.helpers import SIMPLE_TASK, rewrite, write_task


@pytest.fixture
def tasks_dir(tmp_path):
    root = tmp_path / "tasks"
    root.mkdir()
    return root


def discover_in(root):
    return TaskRegistry(root).discover()


def error_messages(found) -> dict[str, str]:
    return {e.path: e.message for e in found.errors}


def test_it_derives_ids_from_paths(tasks_dir):
    write_task(tasks_dir, "sync-data.py")
    write_task(tasks_dir, "reports/weekly.py")
    write_task(tasks_dir, "billing/eu/close_month.py")

    found = discover_in(tasks_dir)

    assert sorted(found.tasks) == ["billing-eu-close_month", "reports-weekly", "sync-data"]
    assert found.errors == []
    assert found.get("reports-weekly").target == "task:reports-weekly"


@pytest.mark.parametrize(
    "ignored",
    [
        "_helpers.py",
        ".scratch.py",
        "__pycache__/cached.py",
        "test_sync.py",
        "sync_test.py",
        "conftest.py",
        "tests/fixture_task.py",
        "reports/tests/weekly_case.py",
        "node_modules/pkg/build.py",
        "_data/loader.py",
        ".git/hooks/pre_commit.py",
        ".venv/lib/python3.11/site-packages/pkg.py",
        "venv/lib/python3.11/site-packages/pkg.py",
        "env/lib/python3.11/site-packages/pkg.py",
        "notes.txt",
    ],
)
def test_it_ignores_files_and_folders_that_are_not_tasks(tasks_dir, ignored):
    write_task(tasks_dir, "kept.py")
    # A broken file would show up as an error if it were looked at, a working one as a task.
    write_task(tasks_dir, ignored, "this is not python (")

    found = discover_in(tasks_dir)

    assert list(found.tasks) == ["kept"]
    assert found.errors == []


def test_it_ignores_a_virtualenv_folder_recognised_by_its_pyvenv_cfg(tasks_dir):
    write_task(tasks_dir, "kept.py")
    (tasks_dir / "toolchain").mkdir()
    (tasks_dir / "toolchain" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    write_task(tasks_dir, "toolchain/lib/python3.11/site-packages/six.py", "broken (")
    write_task(tasks_dir, "toolchain/bin/activate_this.py", "broken (")

    found = discover_in(tasks_dir)

    assert list(found.tasks) == ["kept"]
    assert found.errors == []


def test_it_finds_nothing_in_a_missing_directory(tmp_path):
    found = discover_in(tmp_path / "does-not-exist")

    assert found.tasks == {}
    assert found.errors == []


def test_it_gives_fields_not_set_sensible_defaults(tasks_dir):
    write_task(tasks_dir, "reports/plain.py")

    definition = discover_in(tasks_dir).get("reports-plain")

    assert definition.name == "reports-plain"
    assert definition.description == ""
    assert definition.schedulable is False
    assert definition.input_schema is None
    assert definition.output_schema is None
    assert definition.env_allowlist is None
    assert definition.timeout_seconds is None
    assert definition.backoff_limit is None


def test_it_reads_every_field(tasks_dir):
    write_task(
        tasks_dir,
        "sync-data.py",
        """
        from runs.definitions import task

        @task(
            name="Sync external data",
            description="Pull latest records",
            schedulable=True,
            input_schema={"type": "object", "properties": {"limit": {"type": "integer"}}},
            output_schema={"type": "object", "required": ["synced"]},
            env_allowlist=["API_TOKEN", "API_URL"],
            timeout_seconds=120,
            backoff_limit=3,
        )
        def run(ctx):
            return {"synced": 3}
        """,
    )

    definition = discover_in(tasks_dir).get("sync-data")

    assert definition.name == "Sync external data"
    assert definition.description == "Pull latest records"
    assert definition.schedulable is True
    assert definition.input_schema == {
        "type": "object",
        "properties": {"limit": {"type": "integer"}},
    }
    assert definition.output_schema == {"type": "object", "required": ["synced"]}
    assert definition.env_allowlist == ("API_TOKEN", "API_URL")
    assert definition.timeout_seconds == 120
    assert definition.backoff_limit == 3
    assert definition.path == str(tasks_dir / "sync-data.py")


@pytest.mark.parametrize("decorator", ["@task", "@task()", '@task(name="Doubler")'])
def test_it_accepts_the_decorator_bare_or_called(tasks_dir, decorator):
    write_task(
        tasks_dir,
        "double.py",
        f"""
        from runs.definitions import task

        {decorator}
        def run(ctx):
            return ctx.input["n"] * 2
        """,
    )

    definition = discover_in(tasks_dir).get("double")

    assert execute(definition, LocalContext(input={"n": 21})).output == 42


def test_it_runs_a_sync_task(tasks_dir):
    write_task(
        tasks_dir,
        "hello.py",
        """
        from runs.definitions import task

        @task
        def run(ctx):
            return {"hello": ctx.input["who"]}
        """,
    )
    definition = discover_in(tasks_dir).get("hello")

    outcome = execute(definition, LocalContext(input={"who": "world"}))

    assert definition.is_async is False
    assert (outcome.ok, outcome.output) == (True, {"hello": "world"})


def test_it_runs_an_async_task(tasks_dir):
    write_task(
        tasks_dir,
        "fetch.py",
        """
        import asyncio
        from runs.definitions import task

        @task(name="Fetch")
        async def run(ctx):
            await asyncio.sleep(0)
            return {"fetched": ctx.input["n"]}
        """,
    )
    definition = discover_in(tasks_dir).get("fetch")

    outcome = execute(definition, LocalContext(input={"n": 7}))

    assert definition.is_async is True
    assert (outcome.ok, outcome.output) == (True, {"fetched": 7})


BROKEN_FILES = {
    "syntax error": (
        "from runs.definitions import task\n\n@task\ndef run(ctx)\n    return 1\n",
        "syntax error on line 4",
    ),
    "missing module": (
        "import studio_no_such_module\n" + SIMPLE_TASK,
        "ModuleNotFoundError while importing: No module named 'studio_no_such_module'",
    ),
    "exception at import": (
        "raise RuntimeError('config file missing')\n",
        "RuntimeError while importing: config file missing",
    ),
    "sys.exit at import": (
        "import sys\nsys.exit(2)\n" + SIMPLE_TASK,
        "SystemExit while importing",
    ),
    "no task": ("def run(ctx):\n    return 1\n", "defines no task"),
    "two tasks": (
        SIMPLE_TASK + "\n@task\ndef other(ctx):\n    return 2\n",
        "defines 2 tasks; a file defines exactly one",
    ),
    "input_schema not a schema": (
        SIMPLE_TASK.replace("@task", "@task(input_schema={'type': 'integr'})"),
        "input_schema is not a valid JSON Schema at type",
    ),
    "input_schema with a bad nested rule": (
        SIMPLE_TASK.replace(
            "@task",
            "@task(input_schema={'type': 'object', 'properties': {'n': {'minimum': 'one'}}})",
        ),
        "input_schema is not a valid JSON Schema at properties/n/minimum",
    ),
    "input_schema not a dict": (
        SIMPLE_TASK.replace("@task", "@task(input_schema=['limit'])"),
        "input_schema must be a JSON Schema object (a dict), not list",
    ),
    "output_schema not a schema": (
        SIMPLE_TASK.replace("@task", "@task(output_schema={'required': 'synced'})"),
        "output_schema is not a valid JSON Schema at required",
    ),
    "unknown option": (
        SIMPLE_TASK.replace("@task", "@task(schedule='daily')"),
        "unknown option(s): schedule",
    ),
    "timeout_seconds zero": (
        SIMPLE_TASK.replace("@task", "@task(timeout_seconds=0)"),
        "timeout_seconds must be a positive integer, got 0",
    ),
    "timeout_seconds a string": (
        SIMPLE_TASK.replace("@task", "@task(timeout_seconds='60')"),
        "timeout_seconds must be a positive integer, got '60'",
    ),
    "backoff_limit negative": (
        SIMPLE_TASK.replace("@task", "@task(backoff_limit=-1)"),
        "backoff_limit must be a non-negative integer, got -1",
    ),
    "env_allowlist a string": (
        SIMPLE_TASK.replace("@task", "@task(env_allowlist='API_TOKEN')"),
        "env_allowlist must be a list of environment variable names",
    ),
    "env_allowlist a number": (
        SIMPLE_TASK.replace("@task", "@task(env_allowlist=5)"),
        "env_allowlist must be a list of environment variable names",
    ),
    "schedulable a string": (
        SIMPLE_TASK.replace("@task", "@task(schedulable='no')"),
        "schedulable must be True or False",
    ),
    "reuse_process a string": (
        SIMPLE_TASK.replace("@task", "@task(reuse_process='yes')"),
        "reuse_process must be True or False, got 'yes'",
    ),
    "name not a string": (
        SIMPLE_TASK.replace("@task", "@task(name=42)"),
        "name must be a string",
    ),
    "decorator given a name positionally": (
        SIMPLE_TASK.replace("@task", "@task('Sync data')"),
        "@task must decorate a function",
    ),
    "run without ctx": (
        SIMPLE_TASK.replace("def run(ctx)", "def run()"),
        "run() must take exactly one argument (ctx), it takes 0",
    ),
    "run with two arguments": (
        SIMPLE_TASK.replace("def run(ctx)", "def run(ctx, extra)"),
        "run() must take exactly one argument (ctx), it takes 2",
    ),
}


@pytest.mark.parametrize("source, reason", BROKEN_FILES.values(), ids=BROKEN_FILES.keys())
def test_it_reports_a_broken_file_and_still_loads_the_others(tasks_dir, source, reason):
    write_task(tasks_dir, "good.py")
    (tasks_dir / "broken.py").write_text(source)
    write_task(tasks_dir, "reports/weekly.py")

    found = discover_in(tasks_dir)

    assert sorted(found.tasks) == ["good", "reports-weekly"]
    assert len(found.errors) == 1
    assert found.errors[0].path == "tasks/broken.py"
    assert reason in found.errors[0].message


def test_it_reports_two_files_that_give_the_same_id(tasks_dir):
    write_task(tasks_dir, "a-b.py", SIMPLE_TASK.replace("@task", "@task(name='flat')"))
    write_task(tasks_dir, "a/b.py", SIMPLE_TASK.replace("@task", "@task(name='nested')"))

    found = discover_in(tasks_dir)

    assert list(found.tasks) == ["a-b"]
    winner = found.tasks["a-b"].path
    [error] = found.errors
    loser = {str(tasks_dir / "a-b.py"), str(tasks_dir / "a" / "b.py")} - {winner}
    assert str(tasks_dir.parent / error.path) == loser.pop()
    assert "task id 'a-b' is already defined by" in error.message


def test_it_picks_up_added_changed_and_removed_files_without_a_restart(tasks_dir):
    registry = TaskRegistry(tasks_dir)
    write_task(tasks_dir, "first.py")
    assert list(registry.discover().tasks) == ["first"]

    second = write_task(tasks_dir, "reports/second.py")
    assert sorted(registry.discover().tasks) == ["first", "reports-second"]

    # Same length as before, so only the modification time tells the change apart.
    rewrite(second, SIMPLE_TASK.replace('"ok"', '"OK"'))
    assert execute(registry.discover().get("reports-second"), LocalContext()).output == "OK"

    rewrite(second, SIMPLE_TASK.replace("@task", "@task(name='Second report')"))
    assert registry.discover().get("reports-second").name == "Second report"

    (tasks_dir / "first.py").unlink()
    assert list(registry.discover().tasks) == ["reports-second"]


def test_a_directory_named_several_ways_has_one_registry(tasks_dir):
    link = tasks_dir.parent / "link"
    link.symlink_to(tasks_dir)
    registry = get_registry(tasks_dir, in_process=True)
    for name in (tasks_dir, str(tasks_dir), link, tasks_dir / "sub" / "..", str(link)):
        assert get_registry(name, in_process=True) is registry, name
    assert registry.root == tasks_dir.resolve()


def test_discover_by_a_remembered_name_still_sees_every_change(tasks_dir):
    write_task(tasks_dir, "first.py")
    assert list(discover(tasks_dir, in_process=True).tasks) == ["first"]
    write_task(tasks_dir, "second.py")
    assert sorted(discover(tasks_dir, in_process=True).tasks) == ["first", "second"]
    (tasks_dir / "first.py").unlink()
    assert list(discover(tasks_dir, in_process=True).tasks) == ["second"]


def test_with_a_max_age_it_answers_from_its_last_look_until_that_is_older(tasks_dir):
    registry = TaskRegistry(tasks_dir)
    path = write_task(tasks_dir, "report.py")
    assert registry.discover(max_age=60).get("report").name == "report"  # first look: now
    rewrite(path, SIMPLE_TASK.replace("@task", "@task(name='Renamed')"))
    write_task(tasks_dir, "added.py")
    # Looked less than a minute ago: that look stands, the directory is not read.
    assert list(registry.discover(max_age=60).tasks) == ["report"]
    assert registry.discover(max_age=60).get("report").name == "report"
    # Without max_age (every caller but the API's creates), or once the look is older: now.
    assert registry.discover().get("report").name == "Renamed"
    rewrite(path, SIMPLE_TASK.replace("@task", "@task(name='Again')"))
    time.sleep(0.06)
    assert registry.discover(max_age=0.05).get("report").name == "Again"
    assert sorted(registry.discover(max_age=0.05).tasks) == ["added", "report"]


def test_creates_waiting_for_a_look_use_it_rather_than_each_looking_again(tasks_dir):
    registry = TaskRegistry(tasks_dir)
    write_task(tasks_dir, "report.py")
    looks = []
    look = registry._look

    def slow_look():
        looks.append(1)
        time.sleep(0.05)  # long enough for every other thread to queue up on the lock
        return look()

    registry._look = slow_look
    threads = [threading.Thread(target=registry.discover, kwargs={"max_age": 60}) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(looks) == 1


def test_it_notices_a_file_breaking_and_being_fixed(tasks_dir):
    registry = TaskRegistry(tasks_dir)
    path = write_task(tasks_dir, "flaky.py")
    assert list(registry.discover().tasks) == ["flaky"]

    rewrite(path, "def run(ctx)\n")
    found = registry.discover()
    assert found.tasks == {}
    assert error_messages(found)["tasks/flaky.py"].startswith("syntax error on line 1")

    rewrite(path, SIMPLE_TASK)
    found = registry.discover()
    assert list(found.tasks) == ["flaky"]
    assert found.errors == []


def test_it_lets_the_other_file_take_an_id_once_its_duplicate_is_removed(tasks_dir):
    registry = TaskRegistry(tasks_dir)
    write_task(tasks_dir, "a-b.py", SIMPLE_TASK.replace("@task", "@task(name='flat')"))
    write_task(tasks_dir, "a/b.py", SIMPLE_TASK.replace("@task", "@task(name='nested')"))
    winner = registry.discover().get("a-b").name

    (tasks_dir / ("a-b.py" if winner == "flat" else "a/b.py")).unlink()
    found = registry.discover()

    assert found.get("a-b").name == ({"flat", "nested"} - {winner}).pop()
    assert found.errors == []


def test_it_imports_an_unchanged_file_only_once(tasks_dir):
    imports = tasks_dir.parent / "imports.log"
    write_task(
        tasks_dir,
        "counted.py",
        f"""
        from runs.definitions import task

        with open({str(imports)!r}, "a") as log:
            log.write("imported\\n")

        @task
        def run(ctx):
            return None
        """,
    )
    registry = TaskRegistry(tasks_dir)

    registry.discover()
    write_task(tasks_dir, "unrelated.py")
    registry.discover()
    registry.discover()

    assert imports.read_text().splitlines() == ["imported"]
