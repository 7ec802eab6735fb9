"""The fork server: a small process, without Django, that forks every run's child.

Forking the worker itself copies the page tables of a process that holds Django, the database
drivers and Huey (about 80 MB), on every run, while holding the worker's GIL: measured, that was
two thirds of the CPU a no-op run cost. This process holds no Django and no task module (about
20 MB), so a fork costs a fraction of that and happens outside the worker. Each run's child
enters its own sandbox and only then imports its own task file (runs/process/child.py,
runs/process/sandbox.py).

At start the zygote tries the sandbox for real (sandbox.probe): STUDIO_SANDBOX=auto goes on
without it after a loud warning, `required` exits with code 78 (the worker then refuses to start).
Not root, it first moves itself into a network namespace of its own with user-mode networking
(netns.py); sandboxed, it gives each run a cgroup where the machine offers one (cgroups.py).

Protocol, one Unix stream connection per run:
  worker -> zygote   one JSON line: {"task_id", "path", "limits", "network", "input", "config",
                     "project_id", "run_id", "attempt"}
  zygote -> worker   one JSON line {"pid": N, "exit_pipe": bool} carrying the child's pipe ends
                     as SCM_RIGHTS [stdout, stderr, events, control (, exit)], or {"error": "..."};
                     for {"reuse": true} (a process that serves a task's runs one after
                     another, child._serve), [its socket (, exit)] instead of the four pipes
  PID 1 -> worker    sandboxed: "<code>\n" on the exit pipe the moment the task has exited,
                     before the namespaces are torn down (straight to the worker: one hop fewer)
  zygote -> worker   one JSON line {"exit": code, "limit": name or null} once the child (PID 1
                     when sandboxed) is reaped, then EOF: what a worker reads when there is no
                     exit pipe, when PID 1 was killed before it could write, and for the limit
                     the run's cgroup saw it run into
The zygote compiles task files (never runs them: cached by mtime and size) and blocks Django
imports before it forks, so each child only executes its own file's code. Sandboxed, it keeps
one sandbox per worker thread set up ahead of time, its task process already forked and waiting
(child.prepare_warm); a run with the default limits and network is handed to one (its pid is then
the run's pid). The preparer (preparer.py, a process of the zygote's, at idle priority as root)
sets them up and the zygote asks it for another after each reply, so that a request never waits
while a sandbox is cloned; if the preparer dies, the zygote prepares them itself, when idle.
The socket lives in a private (0700) directory. The zygote dies with its worker; on the way out
it kills every run's process group, and each child also dies with the zygote (PDEATHSIG).
"""

from __future__ import annotations

import atexit
import gc
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
from types import CodeType

from . import cgroups, netns, preparer
from .child import (
    Child,
    Warm,
    die_with_parent,
    exit_code_of,
    fits_warm,
    hand_to_warm,
    prepare_warm,
    promote,
    spawn,
)
from .sandbox import Policy, block_django, guard_loopback, probe
from .sandbox import _plan as sandbox_plan

MAX_REQUEST_BYTES = 64 * 1024 * 1024
IDLE_SECONDS = 0.02  # this long without a request or an exit counts as idle (cgroups.tidy)
REFILL_IDLE_SECONDS = 0.002  # ... and this long, when no run is in flight (prepare sandboxes)
PROMOTE_POLL_SECONDS = 0.01  # look (at least this often) for a run's task process being forked
PROMOTE_SECONDS = 1.0  # ... and for how long (from then on, P1 forks at the normal priority)
REFILL_RETRY_SECONDS = 1.0  # after the kernel refused a prepared sandbox (say, out of processes)
HANDSHAKE_TIMEOUT = 30.0
REPORT_TIMEOUT = 10.0  # how long a worker waits for the zygote's report on a run that ended badly


@dataclass
class RemoteChild:
    """A run's child as the worker sees it: its pid (= process group) and the pipe ends."""

    pid: int
    stdout_fd: int
    stderr_fd: int
    events_fd: int
    control_fd: int
    status: socket.socket  # the zygote's report once the child has exited: {"exit", "limit"}
    # Sandboxed: the pipe on which the run's PID 1 writes the task's exit code the moment the
    # task ends (one hop fewer than through the zygote, which reports only once PID 1 is gone).
    exit_fd: int | None = None
    limit: str | None = None  # the limit the run's cgroup saw it hit ({"exit", "limit"})

    def exit_source(self) -> int | socket.socket:
        """What becomes readable once the child has exited (for a selector)."""
        return self.exit_fd if self.exit_fd is not None else self.status

    def read_exit_code(self) -> int | None:
        """The child's exit code (signal N -> 128+N), or None if the zygote died first."""
        code, self.limit = _exit_of(self.exit_fd, self.status)
        return code

    def kill(self) -> None:
        """Stop everything of the run: its process group (sandboxed: its PID namespace)."""
        kill_group(self.pid)

    def settle(self) -> None:
        """The run is over: kill what it left behind."""
        kill_group(self.pid)

    def close(self) -> None:
        close_fds(self.stdout_fd, self.stderr_fd, self.events_fd, self.control_fd, self.exit_fd)
        self.status.close()


@dataclass
class ServingProcess:
    """A task process that serves runs one after another (`@task(reuse_process=True)`), as the
    worker sees it: the socket its runs go to (child.send_run) and come back "done" on, and how
    it ends, as for a RemoteChild."""

    pid: int  # its P1 when sandboxed (= its process group)
    sock: socket.socket
    status: socket.socket
    exit_fd: int | None = None

    def read_exit_code(self) -> tuple[int | None, str | None]:
        """Once it has ended: (its exit code, the limit its cgroup saw it run into)."""
        return _exit_of(self.exit_fd, self.status)

    def close(self) -> None:
        close_fds(self.exit_fd)
        self.sock.close()
        self.status.close()


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def close_fds(*fds: int | None) -> None:
    """Close these descriptors (None and the already closed are skipped)."""
    for fd in fds:
        if fd is None:
            continue
        try:
            os.close(fd)
        except OSError:
            pass


def _exit_of(exit_fd: int | None, status: socket.socket) -> tuple[int | None, str | None]:
    """(exit code (signal N -> 128+N), or None if the zygote died first; the limit the run's
    cgroup saw it run into), from PID 1's exit pipe and the zygote's report."""
    code = _read_code(exit_fd) if exit_fd is not None else None
    if code == 0:
        return 0, None  # a clean exit: no limit to look for
    # Otherwise the zygote's report says which limit the run's cgroup saw it run into, and has
    # the code when PID 1 could not say (it was killed with the run).
    reply = _report_of(status)
    if reply is None:
        return code, None
    return (code if code is not None else reply["exit"]), reply.get("limit")


def _report_of(status: socket.socket) -> dict | None:
    status.settimeout(REPORT_TIMEOUT)
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = status.recv(4096)
            if not chunk:
                return None
            data += chunk
    except TimeoutError:
        return None
    return json.loads(data)


def _read_code(fd: int) -> int | None:
    """The exit code PID 1 wrote ("<code>\n", one write), or None if it ended without one."""
    try:
        data = os.read(fd, 64)
    except BlockingIOError:
        return None
    return int(data) if data.strip().isdigit() else None


class ForkServer:
    """The worker's handle on its zygote: started on first use, restarted if it died."""

    def __init__(self, tasks_dir: Path, policy: Policy | None = None):
        self.tasks_dir = Path(tasks_dir)
        self.policy = policy or Policy(mode="off")
        self.dir: str | None = None
        self.path = ""
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def spawn(self, task_id: str, **request) -> RemoteChild:
        """Start one run's child: `request` as the module docstring says."""
        pid, fds, conn, exit_fd = self._start_process({"task_id": task_id, **request}, 4)
        return RemoteChild(pid, *fds, status=conn, exit_fd=exit_fd)

    def serve(self, task_id: str, **request) -> ServingProcess:
        """Start a process that serves `task_id`'s runs one after another (child._serve)."""
        pid, fds, conn, exit_fd = self._start_process(
            {"task_id": task_id, **request, "reuse": True}, 1
        )
        return ServingProcess(pid, socket.socket(fileno=fds[0]), status=conn, exit_fd=exit_fd)

    def _start_process(
        self, request: dict, ends: int
    ) -> tuple[int, list[int], socket.socket, int | None]:
        """(pid, the worker's `ends` descriptors, the connection the zygote reports the exit on,
        PID 1's exit pipe or None)."""
        conn = self._connect()
        fds: list[int] = []
        try:
            conn.settimeout(HANDSHAKE_TIMEOUT)  # a stuck fork server must not hang the worker
            conn.sendall(json.dumps(request, default=str).encode() + b"\n")
            message, fds, _, _ = socket.recv_fds(conn, 65536, ends + 1)
            reply = json.loads(message.split(b"\n", 1)[0])
            if "error" in reply:
                raise RuntimeError(reply["error"])
            expected = ends + 1 if reply.get("exit_pipe") else ends
            if len(fds) != expected:
                raise RuntimeError(
                    f"the fork server sent {len(fds)} descriptors, expected {expected}"
                )
            conn.settimeout(None)
        except BaseException:
            for fd in fds:
                os.close(fd)
            conn.close()
            raise
        return reply["pid"], fds[:ends], conn, fds[ends] if fds[ends:] else None

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
        root = Path(__file__).resolve().parents[2]  # the project: where `runs` is importable
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
                    self.policy.to_json(),
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


_code_cache: dict[str, tuple[tuple[int, int], CodeType | Exception]] = {}


def _compiled(path: str) -> CodeType | Exception:
    """A task file compiled (pure: no code of it runs here), cached by mtime and size; or the
    reason it cannot be, for the child to report."""
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
        cached = _code_cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        with open(path, "rb") as f:
            source = f.read()
    except OSError as exc:
        return ValueError(f"cannot be read: {exc}")
    try:
        code: CodeType | Exception = compile(source, path, "exec")
    except SyntaxError as exc:
        code = ValueError(f"syntax error on line {exc.lineno}: {exc.msg}")
    except (ValueError, TypeError) as exc:
        code = ValueError(f"cannot be compiled: {exc}")
    _code_cache[path] = (stamp, code)
    return code


def _report(conn: socket.socket | None, code: int, limit: str | None = None) -> None:
    """Tell the worker how its run's process ended (once: later reports find no connection),
    and which limit its cgroup saw it run into, if any."""
    if conn is None:
        return
    try:
        conn.sendall(json.dumps({"exit": code, "limit": limit}).encode() + b"\n")
    except OSError:
        pass
    conn.close()


SANDBOX_REFUSED = 78  # EX_CONFIG: STUDIO_SANDBOX=required and the kernel does not allow it


def _set_up_sandbox(policy: Policy) -> None:
    """Decide, once, whether runs are sandboxed; say so loudly when they are not."""
    if policy.mode == "off":
        print("studio: STUDIO_SANDBOX=off: runs are NOT sandboxed", file=sys.stderr, flush=True)
        return
    # Not root: the host's loopback is kept from runs by a network namespace of our own (netns).
    loopback = None if policy.own_uids else netns.isolate_network()
    if loopback is not None and loopback[0] is not None and policy.mode == "required":
        print(f"studio: STUDIO_SANDBOX=required but {loopback[0]}", file=sys.stderr, flush=True)
        os._exit(SANDBOX_REFUSED)
    reason = probe(policy)
    if reason is not None:
        if policy.mode == "required":
            print(
                f"studio: STUDIO_SANDBOX=required but runs cannot be sandboxed here: {reason}",
                file=sys.stderr,
                flush=True,
            )
            os._exit(SANDBOX_REFUSED)
        print(
            "studio: WARNING: runs are NOT sandboxed (STUDIO_SANDBOX=auto and the kernel "
            f"refused: {reason}). A run can read what Studio's user can read and signal its "
            "processes; see README, 'What a run can reach'.",
            file=sys.stderr,
            flush=True,
        )
        return
    policy.enabled = True
    limits = cgroups.setup() if policy.cgroups else "rlimits (STUDIO_SANDBOX_CGROUPS=false)"
    network = guard_loopback(policy) if loopback is None else loopback[0]
    print(
        f"studio: runs are sandboxed (own PID + mount namespace, own user, limits: {limits})"
        + ("" if loopback is None or loopback[0] else f"; {loopback[1]}")
        + ("" if network is None else f"; WARNING: host loopback NOT blocked: {network}"),
        file=sys.stderr,
        flush=True,
    )


class _Zygote:
    """The fork server's state and loop: its runs in flight, its prepared sandboxes and the
    preparer that sets them up, and the P1s whose priority it has yet to finish lifting."""

    def __init__(self, tasks_dir: str, policy: Policy) -> None:
        self.tasks_dir = os.path.realpath(tasks_dir) + os.sep
        self.policy = policy
        self.waiting: dict[int, socket.socket] = {}  # run's pid -> its worker's connection
        # Sandboxes set up ahead of the runs that fit them (child.prepare_warm), one per worker
        # thread: with several runs starting at once, each finds one.
        self.prepared: dict[int, Warm] = {}
        # Set up by the preparer (preparer.py) while it lives; by this process, when idle, if
        # it died.
        self.helper: preparer.Preparer | None = None
        self.reaped_unknown: list[int] = []  # P1s reaped before the preparer's word of them came
        # P1s handed a run (and lifted to the normal priority) whose task process was not yet
        # to be seen, perhaps being forked at the idle one: lifted too once it is (promote).
        self.unpromoted: dict[int, float] = {}  # P1 -> when to stop looking
        self.refill_after = 0.0  # after a failed attempt, the next one waits a while
        self.sel: selectors.BaseSelector | None = None  # made in loop(), after the preparer

    def end(self, *_) -> None:
        """The worker is gone (PDEATHSIG) or we were told to stop: take every run's process
        group with us, including what the tasks spawned."""
        for pid in [*self.waiting, *self.prepared]:
            kill_group(pid)
        cgroups.release_all()
        os._exit(0)

    # --- prepared sandboxes ---

    def missing(self) -> int:
        """Sandboxes neither prepared nor asked of the preparer yet."""
        if not self.policy.enabled:
            return 0
        asked = len(self.helper.asked) if self.helper else 0
        return self.policy.prepared - len(self.prepared) - asked

    def short(self) -> bool:
        return self.missing() > 0 and time.monotonic() >= self.refill_after

    def start_preparer(self) -> None:
        self.helper = preparer.start(self.policy)  # before any descriptor it need not hold
        self.top_up()

    def top_up(self) -> None:
        """Ask the preparer for the sandboxes missing."""
        while self.helper and self.short():
            try:
                cg = cgroups.claim(self.policy.limits, make=False)
            except OSError:
                self.refill_after = time.monotonic() + REFILL_RETRY_SECONDS
                return
            try:
                self.helper.ask(cg)
            except OSError:
                cgroups.release(cg=cg)
                self.lose_preparer()

    def lose_preparer(self, *, reaped: bool = False) -> None:
        gone, self.helper = self.helper, None
        if gone is None:
            return
        if self.sel is not None:  # registered with it (loop)
            self.sel.unregister(gone.sock)
        gone.sock.close()
        if not reaped:  # it may still live, of no use now (reaped, its pid is another's)
            try:
                os.kill(gone.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for cg in gone.asked.values():
            cgroups.release(cg=cg)

    def from_preparer(self) -> None:
        try:
            warm, cg = self.helper.receive()
        except (OSError, ValueError):
            self.lose_preparer()
            return
        if warm is None:  # the kernel refused (say, out of processes): try again later
            cgroups.release(cg=cg)
            self.refill_after = time.monotonic() + REFILL_RETRY_SECONDS
        elif warm.pid in self.reaped_unknown:
            self.reaped_unknown.remove(warm.pid)
            warm.close()
            cgroups.release(cg=cg)
        else:
            self.prepared[warm.pid] = warm
            cgroups.track(warm.pid, cg)
        self.top_up()

    def refill(self, most: int) -> None:
        """Prepare up to `most` sandboxes here, without going over policy.prepared."""
        for _ in range(most):
            if not self.short():
                return
            try:
                cg = cgroups.claim(self.policy.limits, make=not self.policy.own_uids)
                try:
                    warm = prepare_warm(self.policy, cg)
                except OSError:
                    cgroups.release(cg=cg)
                    raise
                cgroups.track(warm.pid, cg)
            except OSError:  # no process to spare now: runs take the slow path meanwhile
                self.refill_after = time.monotonic() + REFILL_RETRY_SECONDS
                return
            self.prepared[warm.pid] = warm

    def lift(self) -> None:
        now = time.monotonic()
        for p1, until in list(self.unpromoted.items()):
            if promote(p1) or now > until:
                del self.unpromoted[p1]

    # --- runs ---

    def start(self, request: dict, code: CodeType | Exception) -> Child:
        policy = self.policy
        if self.prepared and fits_warm(request):
            ready = self.prepared.pop(next(iter(self.prepared)))  # the oldest: likely set up
            if policy.own_uids and not promote(ready.pid):  # prepared at idle priority as root
                self.unpromoted[ready.pid] = time.monotonic() + PROMOTE_SECONDS
            try:
                return hand_to_warm(ready, request, code)
            except OSError:  # it died meanwhile: start this run the slow way
                self.unpromoted.pop(ready.pid, None)
                kill_group(ready.pid)
        cg = cgroups.claim(policy.limits_for(request.get("limits")), make=not policy.own_uids)
        try:
            child = spawn(request, policy, code, cg)
        except BaseException:
            cgroups.release(cg=cg)
            raise
        cgroups.track(child.pid, cg)
        return child

    def accept(self, listener: socket.socket) -> None:
        """One worker's request: start its run, and reply with the run's pid and pipe ends."""
        try:
            conn, _ = listener.accept()
        except OSError:  # e.g. out of descriptors: that client sees the failure
            return
        try:
            request = _read_request(conn)
            task_path = os.path.realpath(request.get("path") or "")
            if not task_path.startswith(self.tasks_dir):
                raise LookupError(f"task {request['task_id']!r} is not in {self.tasks_dir}")
            child = self.start(request, _compiled(task_path))
        except Exception as exc:  # noqa: BLE001 - tell the worker, keep serving
            try:
                conn.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
            except OSError:
                pass
            conn.close()
            return
        fds = list(child.ends)
        if child.status_fd is not None:
            fds.append(child.status_fd)  # the worker reads the exit from PID 1 itself
        reply = {"pid": child.pid, "exit_pipe": child.status_fd is not None}
        try:
            socket.send_fds(conn, [json.dumps(reply).encode() + b"\n"], fds)
            conn.settimeout(None)
            self.waiting[child.pid] = conn
        except OSError:  # the worker went away: nobody would supervise this child
            conn.close()
            kill_group(child.pid)
        finally:
            for fd in fds:
                os.close(fd)
        if self.helper:
            self.top_up()
        elif not self.prepared:
            self.refill(1)  # after the reply, off this run's path: the next run needs one

    def reap(self) -> None:
        """Every child that ended: a run (report it), the preparer or a prepared sandbox."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if netns.lost(pid):  # slirp4netns (not root): it says so itself
                continue
            if self.helper and pid == self.helper.pid:  # prepare here from now on
                self.lose_preparer(reaped=True)
                continue
            self.unpromoted.pop(pid, None)
            if pid in self.prepared:  # died unused: another is prepared
                self.prepared.pop(pid).close()
                cgroups.release(pid)
                self.top_up()
                continue
            if pid not in self.waiting and self.helper and self.helper.asked:
                # Perhaps a P1 the preparer made whose word has yet to arrive.
                self.reaped_unknown[:] = [*self.reaped_unknown[-63:], pid]
            code = exit_code_of(status)
            _report(self.waiting.pop(pid, None), code, cgroups.verdict(pid, code))
            cgroups.release(pid)  # the run is over: its cgroup goes

    def idle_timeout(self) -> float | None:
        """How long without a request or an exit before doing something on our own: preparing
        a sandbox, asking the preparer again, or removing finished runs' cgroups."""
        timeout = None
        if self.short() and not self.helper:
            # Setting a sandbox up here takes this process a millisecond or more: do it while
            # no run is starting or ending (a run in flight that is quiet this long is a long
            # one), so that a request does not wait for it.
            timeout = REFILL_IDLE_SECONDS if not self.waiting else IDLE_SECONDS
        elif cgroups.pending():
            timeout = IDLE_SECONDS
        elif self.helper and self.missing() > 0:  # asking again, after a wait
            timeout = max(0.0, self.refill_after - time.monotonic())
        return timeout

    def loop(self, listener: socket.socket, wake_r: int) -> None:
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, selectors.EVENT_READ, "accept")
        self.sel.register(wake_r, selectors.EVENT_READ, "signal")
        if self.helper:
            self.sel.register(self.helper.sock, selectors.EVENT_READ, "prepared")
        while True:
            if self.unpromoted:
                self.lift()
            idle = wait = self.idle_timeout()
            if self.unpromoted:  # look again soon, but that alone is not being idle
                wait = PROMOTE_POLL_SECONDS if idle is None else min(idle, PROMOTE_POLL_SECONDS)
            ready = self.sel.select(wait)
            if not ready:
                if wait != idle:
                    continue
                # Nothing to do: prepare a sandbox, or remove finished runs' cgroups.
                if self.short():
                    self.top_up() if self.helper else self.refill(1)
                else:
                    cgroups.tidy()
                continue
            for key, _ in ready:
                if key.data == "prepared":
                    if self.helper:
                        self.from_preparer()
                elif key.data == "accept":
                    self.accept(listener)
                else:
                    try:
                        while os.read(wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    self.reap()


def serve(path: str, tasks_dir: str, worker_pid: int, policy: Policy) -> None:
    zygote = _Zygote(tasks_dir, policy)
    signal.signal(signal.SIGTERM, zygote.end)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is for the worker, which drains first
    die_with_parent(signal.SIGTERM)
    if os.getppid() != worker_pid:
        return
    _set_up_sandbox(policy)
    block_django()  # for every child: a task file that imports Django fails to load
    from .. import definitions

    definitions.SCHEMAS_CHECKED_ELSEWHERE = True  # discovery checked them
    if policy.enabled:
        sandbox_plan(policy)  # computed once here rather than in every child
    # What every fork shares stays shared: the children's garbage collector leaves it alone
    # instead of touching (and so copying) every page of it.
    gc.freeze()
    if policy.enabled:
        zygote.start_preparer()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    os.rename(path + ".tmp", path)  # the path appears only once it accepts connections
    listener.listen(128)
    zygote.loop(listener, wake_r)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), Policy.from_json(sys.argv[4]))
