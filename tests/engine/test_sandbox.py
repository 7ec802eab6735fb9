"""The attacks of issue 9, run as task files against a real worker: each must now fail."""

from __future__ import annotations

import os
import shutil
import socket

import pytest
from django.conf import settings
from django.db import connection

from runs import service
from runs.definitions import discover
from runs.process import sandbox
from tests.workers import TEST_TASKS, wait_for

from .conftest import wait_status
from .test_cancel_timeout import alive, host_pids

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(
        sandbox.probe(sandbox.Policy()) is not None, reason="this kernel cannot sandbox runs"
    ),
]


@pytest.fixture
def sandboxed_worker(start_test_worker):
    def start(**env):
        worker = start_test_worker(STUDIO_SANDBOX="required", **env)
        assert "runs are sandboxed" in worker.log
        return worker

    return start


def test_a_run_reads_none_of_studios_secrets(sandboxed_worker, create):
    worker = sandboxed_worker()
    db_name = str(connection.settings_dict["NAME"])
    paths = [str(settings.VAR_DIR / "secret_key"), settings.HUEY.get("filename") or "/nonexistent"]
    if connection.vendor == "sqlite":
        paths.append(db_name)
    run = create(
        "attack-secrets",
        input={"paths": paths, "worker_pid": worker.pid, "tasks_dir": str(TEST_TASKS)},
    )
    found = wait_status(run, "completed", "failed").output
    assert run.status == "completed", run.error
    for path in paths:
        assert found[path].startswith("denied"), (path, found[path])
    assert found["worker environ"].startswith("denied")
    assert found["environ with DATABASE_URL"] == []
    assert found["visible pids"] == [1, 2]  # its init and itself: nothing of Studio's
    assert found["django"].startswith("denied: ImportError")
    assert found["write /usr"].startswith("denied")
    assert found["write tasks dir"].startswith("denied")
    assert found["write /tmp"] == "GOT: 1"  # its own private /tmp
    assert found["uid"] >= settings.STUDIO_SANDBOX_UID_BASE or os.geteuid() != 0


def test_a_run_cannot_signal_the_worker_or_another_run(sandboxed_worker, create):
    worker = sandboxed_worker(STUDIO_WORKERS=3)
    victim = create("attack-escape")  # any long run of another task
    wait_status(victim, "running")
    victim_pid = wait_for(lambda: _daemon_pid(victim), 20, message="the victim's process")
    attacker = create(
        "attack-signal",
        input={"targets": {"worker": worker.pid, "other run": victim_pid, "init": 1}},
    )
    result = wait_status(attacker, "completed", "failed").output
    assert attacker.status == "completed", attacker.error
    assert result["worker"].startswith("denied")
    assert result["other run"].startswith("denied")
    assert result["signalable"] <= 1  # at most its own init, which ignores it
    victim.refresh_from_db()
    assert victim.status == "running"
    assert alive(victim_pid) and worker.proc.poll() is None
    service.cancel_run(victim)
    wait_status(victim, "cancelled")


def _daemon_pid(run):
    line = run.events.filter(event_type="log", payload__line__startswith="daemon started").first()
    found = line and host_pids(["sleep", line.payload["line"].split()[-1]])
    return found and found[0]


@pytest.mark.parametrize("how", ["cancel", "timeout", "shutdown"])
def test_a_double_forked_setsid_daemon_dies_with_its_run(sandboxed_worker, create, how):
    worker = sandboxed_worker(STUDIO_CANCEL_GRACE_SECONDS=0.5, STUDIO_SHUTDOWN_GRACE_SECONDS=0.5)
    run = create("attack-escape", timeout_seconds=2 if how == "timeout" else 60)
    daemon = wait_for(lambda: _daemon_pid(run), 20, message="the daemon")
    assert alive(daemon)
    if how == "cancel":
        service.cancel_run(run)
        wait_status(run, "cancelled")
    elif how == "timeout":
        wait_status(run, "failed")
        assert run.error["code"] == "timeout"
    else:
        worker.terminate(timeout=30)
    wait_for(lambda: not alive(daemon), 5, message=f"the setsid daemon (pid {daemon}) to be gone")


def test_one_task_files_monkeypatch_does_not_reach_another_run(sandboxed_worker, create):
    sandboxed_worker()
    wait_status(create("attack-patch"), "completed")
    run = wait_status(create("echo", input={"lines": ["a"]}), "completed", "failed")
    assert run.status == "completed", run.error
    assert run.output["echo"] == {"lines": ["a"]}


def test_a_forged_early_result_does_not_count(sandboxed_worker, create):
    sandboxed_worker()
    run = wait_status(create("attack-forge"), "completed", "failed")
    assert run.status == "failed"
    assert run.error["code"] == "timeout"
    assert run.output is None


def test_a_run_cannot_reach_services_on_the_host_loopback(sandboxed_worker, create):
    with socket.socket() as web:  # stands in for Studio's web server on the loopback
        web.bind(("127.0.0.1", 8131))
        web.listen()
        sandboxed_worker()
        ports = [5432, 6379, 8131]
        run = wait_status(create("attack-network", input={"ports": ports}), "completed")
        for port in ports:
            assert run.output[str(port)].startswith("denied"), (port, run.output)
        offline = wait_status(create("offline", input={"port": 8131}), "completed")
        assert offline.output.startswith("denied")


@pytest.mark.parametrize(
    ("exceed", "code", "words"),
    [
        ("memory", "memory_limit", "memory limit of 400 MB"),
        ("cpu", "cpu_limit", "2 s of CPU time"),
        ("processes", "process_limit", "more than 8 processes"),
        ("file_size", "file_size_limit", "larger than 5 MB"),
        ("disk", "disk_limit", "16 MB of private disk space"),
    ],
)
def test_exceeding_a_limit_fails_the_run_with_its_code(
    sandboxed_worker, create, exceed, code, words
):
    sandboxed_worker()
    run = wait_status(
        create("limited", input={"exceed": exceed}), "completed", "failed", timeout=30
    )
    assert run.status == "failed"
    assert run.error["code"] == code, run.error
    assert words in run.error["message"]


def test_a_task_file_importing_django_is_a_discovery_error_and_the_rest_runs(
    start_worker, create, tmp_path, settings
):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    shutil.copy(TEST_TASKS / "echo.py", tasks / "echo.py")
    (tasks / "djangoish.py").write_text(
        "from django.conf import settings\n"
        "from runs.definitions import task\n\n"
        "KEY = settings.SECRET_KEY\n\n"
        "@task\ndef run(ctx):\n    return KEY\n"
    )
    settings.STUDIO_TASKS_DIR = tasks
    found = discover()  # as the web process sees it: a sandboxed process imported the files
    assert set(found.tasks) == {"echo"}
    [error] = found.errors
    assert error.path.endswith("djangoish.py")
    assert "django" in error.message and "ImportError" in error.message
    worker = start_worker(tasks_dir=tasks)
    assert "1 discovery error" in worker.log
    run = wait_status(create("echo", input={"lines": ["hi"]}), "completed", "failed")
    assert run.status == "completed", run.error


# A uid base so high that the run's uid overflows: a stand-in for a kernel that refuses.
IMPOSSIBLE = {"STUDIO_SANDBOX_UID_BASE": 4_294_967_000}


def test_required_refuses_to_start_a_worker_that_cannot_sandbox(start_test_worker):
    with pytest.raises(RuntimeError, match="runs cannot be sandboxed here") as failure:
        start_test_worker(STUDIO_SANDBOX="required", **IMPOSSIBLE)
    assert "worker ready" not in str(failure.value)


def test_auto_warns_loudly_and_still_runs_without_a_sandbox(start_test_worker, create):
    worker = start_test_worker(STUDIO_SANDBOX="auto", **IMPOSSIBLE)
    assert "WARNING: runs are NOT sandboxed" in worker.log
    run = wait_status(create("echo", input={"lines": ["x"]}), "completed", "failed")
    assert run.status == "completed", run.error
