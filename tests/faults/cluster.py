"""A private Studio cluster on this machine: its own PostgreSQL and Redis on free ports, the web
server and three workers. Nothing here touches the machine's shared services (5432, 6379), and
everything listens on, and talks to, 127.0.0.1 only."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
TASKS = Path(__file__).resolve().parent / "tasks"
WORKFLOWS = Path(__file__).resolve().parent / "workflows"
HOST = "127.0.0.1"

# Tight timings, so that faults are noticed and settled within the suite's minutes.
HEARTBEAT_SECONDS = 1.0
LOST_SECONDS = 6.0
STUDIO_TIMINGS = {
    "STUDIO_HEARTBEAT_SECONDS": HEARTBEAT_SECONDS,
    "STUDIO_WORKER_LOST_SECONDS": LOST_SECONDS,
    "STUDIO_SWEEP_SECONDS": 1,
    "STUDIO_REQUEUE_AFTER_SECONDS": 4,
    "STUDIO_RETRY_BASE_SECONDS": 0.2,
    "STUDIO_RETRY_MAX_SECONDS": 1,
    "STUDIO_CANCEL_GRACE_SECONDS": 1,
    "STUDIO_SHUTDOWN_GRACE_SECONDS": 5,
    "STUDIO_WORKERS": 4,
}


class Unavailable(RuntimeError):
    """What the suite needs is not on this machine (PostgreSQL binaries, redis-server, root)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pg_bin(name: str) -> str:
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    found = shutil.which(name)
    if not found:
        raise Unavailable(f"PostgreSQL's {name} is not installed")
    return found


# --- descendants and signals ---------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.split("/")[2]))
    return out


def tree(pid: int) -> list[int]:
    """`pid` and everything below it (run processes call setsid, so a group kill misses them)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children_of(current))
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- the services ---------------------------------------------------------------------------------


class Services:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.pg_port = free_port()
        self.redis_port = free_port()
        self.pg_data = tmp / "pg"
        self.pg_socket = tmp / "pgsock"
        self.redis: subprocess.Popen | None = None
        self.database_url = f"postgres://postgres@{HOST}:{self.pg_port}/studio"
        self.redis_url = f"redis://{HOST}:{self.redis_port}/0"

    def _as_postgres(self, cmd: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root.
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *cmd]
        if pwd.getpwuid(os.geteuid()).pw_name == "postgres":
            return cmd
        raise Unavailable("the fault suite runs PostgreSQL as the postgres user: run it as root")

    def start(self) -> None:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("there is no postgres OS user") from None
        if not shutil.which("redis-server"):
            raise Unavailable("redis-server is not installed")
        os.chmod(self.tmp, 0o755)
        for folder in (self.pg_data, self.pg_socket):
            folder.mkdir()
            shutil.chown(folder, "postgres", "postgres")
        subprocess.run(
            self._as_postgres(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(self.pg_data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self._pg_ctl("start")
        with psycopg.connect(self.admin_url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE studio")
        self.start_redis()

    def admin_url(self, db: str = "studio") -> str:
        return f"postgresql://postgres@{HOST}:{self.pg_port}/{db}"

    def _pg_ctl(self, action: str, mode: str = "fast") -> None:
        options = (
            f"-p {self.pg_port} -c listen_addresses={HOST} -k {self.pg_socket} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300"
        )
        cmd = [
            pg_bin("pg_ctl"),
            "-D",
            str(self.pg_data),
            "-w",
            "-t",
            "60",
            "-m",
            mode,
            "-l",
            str(self.pg_socket / "pg.log"),
            "-o",
            options,
            action,
        ]
        subprocess.run(self._as_postgres(cmd), check=True, stdout=subprocess.DEVNULL)

    def restart_postgres(self) -> None:
        self._pg_ctl("restart", mode="fast")

    def stop_postgres(self) -> None:
        try:
            self._pg_ctl("stop", mode="immediate")
        except Exception:
            pass

    def drop_connections(self) -> int:
        """Terminate every Studio connection, as a flaky network or a proxy would."""
        with psycopg.connect(self.admin_url("postgres"), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = 'studio' AND pid <> pg_backend_pid()"
            ).fetchall()
        return len(rows)

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=open(self.tmp / "redis.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def pong():
            with socket.create_connection((HOST, self.redis_port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

        wait_until(pong, 20, "redis-server")

    def restart_redis(self) -> None:
        """SIGKILL and start again: with no persistence, every queued message is gone."""
        if self.redis is not None:
            self.redis.kill()
            self.redis.wait(10)
        self.start_redis()

    def stop(self) -> None:
        if self.redis is not None and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait(10)
        self.stop_postgres()


# --- Studio ---------------------------------------------------------------------------------------


class Studio:
    def __init__(self, tmp: Path, services: Services):
        self.tmp = tmp
        self.services = services
        self.web_port = free_port()
        self.ledger = tmp / "ledger.jsonl"
        self.ledger.touch()
        os.chmod(self.ledger, 0o666)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("STUDIO_", "DJANGO_", "PROMETHEUS_"))
            and k not in ("DATABASE_URL", "REDIS_URL")
        }
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "studio.settings",
                "DATABASE_URL": services.database_url,
                "REDIS_URL": services.redis_url,
                "SECRET_KEY": "fault-suite-secret-key-not-for-production",
                "STUDIO_VAR_DIR": str(tmp / "var"),
                "STUDIO_TASKS_DIR": str(TASKS),
                "STUDIO_WORKFLOWS_DIR": str(WORKFLOWS),
                "STUDIO_QUEUE_NAME": "faults",
                "STUDIO_LOG_LEVEL": "WARNING",
                "FAULTS_LEDGER": str(self.ledger),
                # The tasks append to a host file (the ledger) to prove no two attempts overlap
                # and no process outlives its run; a sandboxed run can write no host file, so
                # this suite checks the engine's invariants unsandboxed. The sandbox has its own
                # attack tests (tests/engine/test_sandbox.py).
                "STUDIO_SANDBOX": "off",
                "PYTHONUNBUFFERED": "1",
                **{k: str(v) for k, v in STUDIO_TIMINGS.items()},
            }
        )
        self.web: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen | None] = [None, None, None]
        self.token = ""
        self.project_id = ""

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def setup(self) -> None:
        self.manage("migrate", "--noinput")
        self.project_id = self.manage("createproject", "faults").split()[-1]
        self.token = self.manage("createtoken", "faults", "--name", "fault-suite")

    def start_web(self) -> None:
        self.web = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "serve",
                "--no-worker",
                "--host",
                HOST,
                "--port",
                str(self.web_port),
                "--web-workers",
                "2",
            ],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=open(self.tmp / "web.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def up():
            with socket.create_connection((HOST, self.web_port), timeout=1):
                return True

        wait_until(up, 60, "the web server")

    def start_worker(self, index: int) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_huey", "--skip-checks"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=open(self.tmp / f"worker-{index}.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers[index] = proc
        return proc

    def fork_server_of(self, index: int) -> int | None:
        proc = self.workers[index]
        if proc is None:
            return None
        for pid in children_of(proc.pid):
            if "runs.process.forkserver" in cmdline(pid):
                return pid
        return None

    def kill_worker_tree(self, index: int) -> int:
        proc = self.workers[index]
        pids = tree(proc.pid)
        for pid in pids:  # stop them all first, so nothing reacts to a sibling's death
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(10)
        return len(pids)

    def stop(self) -> None:
        for proc in [*self.workers, self.web]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.web]:
            if proc is None:
                continue
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                for pid in tree(proc.pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
