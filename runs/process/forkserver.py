"""The fork server: a small process, without Django, that forks every run's child.

Forking the worker itself copies the page tables of a process that holds Django, the database
drivers and Huey (about 80 MB), on every run, while holding the worker's GIL: measured, that was
two thirds of the CPU a no-op run cost. This process holds only the task definitions (about
25 MB), so a fork costs a fraction of that and happens outside the worker. Each run still gets a
fresh child in its own process group (runs/child.py): isolation and hard kills are unchanged.

Protocol, one Unix stream connection per run:
  worker -> zygote   one JSON line: {"task_id", "input", "config", "project_id", "run_id", "attempt"}
  zygote -> worker   one JSON line {"pid": N} carrying the child's pipe ends as SCM_RIGHTS
                     [stdout, stderr, events, control], or {"error": "..."}
  zygote -> worker   later, one JSON line {"exit": code} once the child has exited; then EOF
The socket lives in a private (0700) directory. The zygote dies with its worker; on the way out
it kills every run's process group, and each child also dies with the zygote (PDEATHSIG).
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

MAX_REQUEST_BYTES = 64 * 1024 * 1024
HANDSHAKE_TIMEOUT = 30.0


@dataclass
class RemoteChild:
    """A run's child as the worker sees it: its pid (= process group) and the pipe ends."""

    pid: int
    stdout_fd: int
    stderr_fd: int
    events_fd: int
    control_fd: int
    status: socket.socket  # readable once the child has exited: {"exit": code}

    def read_exit_code(self) -> int | None:
        """The child's exit code (signal N -> 128+N), or None if the zygote died first."""
        data = b""
        while not data.endswith(b"\n"):
            chunk = self.status.recv(4096)
            if not chunk:
                return None
            data += chunk
        return json.loads(data)["exit"]

    def close(self) -> None:
        for fd in (self.stdout_fd, self.stderr_fd, self.events_fd, self.control_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.status.close()


class ForkServer:
    """The worker's handle on its zygote: started on first use, restarted if it died."""

    def __init__(self, tasks_dir: Path):
        self.tasks_dir = Path(tasks_dir)
        self.dir: str | None = None
        self.path = ""
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def spawn(self, task_id: str, **request) -> RemoteChild:
        conn = self._connect()
        fds: list[int] = []
        try:
            conn.settimeout(HANDSHAKE_TIMEOUT)  # a stuck fork server must not hang the worker
            conn.sendall(json.dumps({"task_id": task_id, **request}, default=str).encode() + b"\n")
            message, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            reply = json.loads(message.split(b"\n", 1)[0])
            if "error" in reply:
                raise RuntimeError(reply["error"])
            if len(fds) != 4:
                raise RuntimeError(f"the fork server sent {len(fds)} descriptors, expected 4")
            conn.settimeout(None)
        except BaseException:
            for fd in fds:
                os.close(fd)
            conn.close()
            raise
        return RemoteChild(reply["pid"], *fds, status=conn)

    def start(self) -> None:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()

    def _connect(self) -> socket.socket:
        self.start()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self.path)
        except OSError:
            conn.close()
            raise
        return conn

    def _start(self) -> None:
        from ..definitions import filtered_env

        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="studio-zygote-")  # 0700: only this user connects
            atexit.register(self.stop)
        self.path = os.path.join(self.dir, f"{uuid.uuid4().hex[:8]}.sock")
        root = Path(__file__).resolve().parent.parent
        env = filtered_env()  # the zygote and its children never see Studio's secrets
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(root), os.environ.get("PYTHONPATH", "")])
        )
        started = threading.Event()

        def keeper() -> None:
            # Linux sends PDEATHSIG when the *thread* that forked the zygote ends, so fork it
            # from a thread that lives exactly as long as the zygote.
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "runs.process.forkserver",
                    self.path,
                    str(self.tasks_dir),
                    str(os.getpid()),
                ],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
            )
            started.set()
            self.proc.wait()

        threading.Thread(target=keeper, name="studio-fork-server", daemon=True).start()
        started.wait()
        deadline = time.monotonic() + 30
        while not os.path.exists(self.path):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the fork server exited at start with code {self.proc.returncode}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError("the fork server did not start within 30 s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


# --- the zygote process itself ------------------------------------------------------------------


def _read_request(conn: socket.socket) -> dict:
    conn.settimeout(5)  # one silent client must not block every other run's fork
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the worker hung up before sending its request")
        data += chunk
        if len(data) > MAX_REQUEST_BYTES:
            raise ValueError("request too large")
    return json.loads(data)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def serve(path: str, tasks_dir: str, worker_pid: int) -> None:
    from ..definitions import TaskRegistry
    from .child import die_with_parent, exit_code_of, spawn

    waiting: dict[int, socket.socket] = {}

    def end(*_) -> None:
        # The worker is gone (PDEATHSIG) or we were told to stop: take every run's process group
        # with us, including what the tasks spawned.
        for pid in list(waiting):
            _kill_group(pid)
        os._exit(0)

    signal.signal(signal.SIGTERM, end)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is for the worker, which drains first
    die_with_parent(signal.SIGTERM)
    if os.getppid() != worker_pid:
        return
    registry = TaskRegistry(Path(tasks_dir))
    registry.discover()  # warm: every fork starts with the task modules imported
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    os.rename(path + ".tmp", path)  # the path appears only once it accepts connections
    listener.listen(128)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(wake_r, selectors.EVENT_READ, "signal")
    while True:
        for key, _ in sel.select():
            if key.data == "accept":
                try:
                    conn, _ = listener.accept()
                except OSError:  # e.g. out of descriptors: that client sees the failure
                    continue
                try:
                    request = _read_request(conn)
                    definition = registry.discover().get(request["task_id"])
                    if definition is None:
                        raise LookupError(f"task {request['task_id']!r} is not in {tasks_dir}")
                    child = spawn(
                        definition,
                        input=request.get("input") or {},
                        config=request.get("config") or {},
                        project_id=request.get("project_id"),
                        run_id=request.get("run_id"),
                        attempt=request.get("attempt", 1),
                    )
                except Exception as exc:  # noqa: BLE001 - tell the worker, keep serving
                    try:
                        conn.sendall(
                            json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n"
                        )
                    except OSError:
                        pass
                    conn.close()
                    continue
                fds = [child.stdout_fd, child.stderr_fd, child.events_fd, child.control_fd]
                try:
                    socket.send_fds(conn, [json.dumps({"pid": child.pid}).encode() + b"\n"], fds)
                    conn.settimeout(None)
                    waiting[child.pid] = conn
                except OSError:  # the worker went away: nobody would supervise this child
                    conn.close()
                    _kill_group(child.pid)
                finally:
                    for fd in fds:
                        os.close(fd)
            else:
                try:
                    while os.read(wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                while True:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    conn = waiting.pop(pid, None)
                    if conn is not None:
                        try:
                            conn.sendall(
                                json.dumps({"exit": exit_code_of(status)}).encode() + b"\n"
                            )
                        except OSError:
                            pass
                        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]))
