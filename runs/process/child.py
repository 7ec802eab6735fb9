"""The child process a run executes in: forked by the fork server, sandboxed, in its own group.

The fork server holds no task module: the child imports its own task file only after the fork
and after entering its sandbox (runs/process/sandbox.py), so one file's module-level code never
reaches another run.

The child never touches the database. It talks to its parent through pipes:
  fd 1 / fd 2   the task's stdout and stderr (also those of anything it spawns)
  events pipe   JSON lines: {"t": "event", ...} from ctx.emit / ctx.progress, then one {"t": "result"}
  control pipe  the parent writes one byte to it when the run is to be cancelled

A reused process (`@task(reuse_process=True)`, request {"reuse": true}) gets no run pipes at
start but a socket to the worker (`_serve`). On it, per run:
  worker -> task   the run's request and its four pipe ends (`send_run`), which the process puts
                   on fds 1-4 for the run and replaces with /dev/null after it
  task -> worker   one line {"done": exit code, "cpu_ms": its CPU time so far, "last": bool}
EOF from the worker ends the process (exit 0).
"""

from __future__ import annotations

import ctypes
import fcntl
import io
import json
import marshal
import os
import resource
import select
import signal
import socket
import struct
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any

from ..definitions import TaskContext, TaskDefinition, filtered_env, load_task_file
from . import cgroups, sandbox
from .runner import error_dict, execute

EVENTS_FD = 3
CONTROL_FD = 4
STATUS_FD = 5  # sandboxed: PID 1 of the run writes the task's exit code here (never the task)
SERVE_FD = 6  # a reused process: its socket to the worker, on which its runs arrive
RUN_FDS = (1, 2, EVENTS_FD, CONTROL_FD)  # where a run's stdout, stderr, events, control go
PR_SET_PDEATHSIG = 1


class ChildContext(TaskContext):
    """Context inside the worker's child: events go to the parent, cancel comes from it."""

    def __init__(self, *, events_fd: int, control_fd: int, **kwargs):
        super().__init__(**kwargs)
        self._events = os.fdopen(events_fd, "w", buffering=1, encoding="utf-8", closefd=False)
        self._control_fd = control_fd
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        if not self._cancelled:
            readable, _, _ = select.select([self._control_fd], [], [], 0)
            self._cancelled = bool(readable)
        return self._cancelled

    def _emit(self, event_type: str, payload: Any) -> None:
        # Flush our own output first so the parent sees log lines and events in the order made.
        sys.stdout.flush()
        sys.stderr.flush()
        self._send({"t": "event", "type": event_type, "payload": payload})

    def _send(self, message: dict) -> None:
        try:
            line = json.dumps(message, default=str, allow_nan=False)
        except ValueError:  # NaN and Infinity have no JSON form: keep the event, readable
            message = {**message, "payload": {"value": repr(message.get("payload"))}}
            line = json.dumps(message, default=str)
        self._events.write(line + "\n")


@dataclass
class Child:
    pid: int
    # The worker's ends: [stdout, stderr, events, control] of a run, or [the socket] of a
    # reused process (request {"reuse": true}).
    ends: list[int]
    # Sandboxed: the read end of the pipe on which the run's PID 1 writes the task's exit code
    # (the worker's to read: forkserver.RemoteChild).
    status_fd: int | None = None


def run_pipes() -> tuple[list[int], list[int]]:
    """A run's four pipes: (the worker's ends [stdout, stderr, events, control], the task's)."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    ev_r, ev_w = os.pipe()
    ctl_r, ctl_w = os.pipe()
    return [out_r, err_r, ev_r, ctl_w], [out_w, err_w, ev_w, ctl_r]


def _ends(request: dict) -> tuple[list[int], list[int]]:
    """(the worker's ends, the task's ends) of what connects a new task process to its worker:
    a run's four pipes, or a reused process's socket."""
    if request.get("reuse"):
        ours, theirs = socket.socketpair()
        return [ours.detach()], [theirs.detach()]
    return run_pipes()


def spawn(request: dict, policy: sandbox.Policy, code: CodeType | Exception, cgroup=None) -> Child:
    """Fork a child that runs the task of `request` ({"task_id", "path", "limits", "network",
    "input", ...}) in a sandbox as `policy` says; `code` is its task file compiled (or why it
    could not be). Return the parent's ends of its pipes. (The caller has blocked Django
    imports already: sandbox.block_django.)"""
    limits = policy.limits_for(request.get("limits"))
    ours, theirs = _ends(request)
    # Sandboxed, the exit is reported by the run's PID 1 as soon as the task ends, before the
    # kernel tears the namespaces down: that teardown stays off the run's critical path.
    st_r, st_w = os.pipe() if policy.enabled else (None, None)
    try:
        if policy.enabled:  # straight into the run's namespaces: this is its PID 1
            pid = sandbox.clone_namespaces(
                policy, network=request.get("network", True) is not False
            )
        else:
            pid = os.fork()
    except OSError:
        for fd in (*ours, *theirs, st_r, st_w):
            if fd is not None:
                os.close(fd)
        raise
    if pid == 0:  # pragma: no cover - runs in the child; covered by the engine tests
        status = 70
        try:  # whatever happens, this process never returns into the fork server's loop
            if request.get("reuse"):  # its runs' pipes come later, over the socket
                places = {SERVE_FD: theirs[0]}
            else:
                places = dict(zip(RUN_FDS, theirs, strict=True))
            if st_w is not None:
                places[STATUS_FD] = st_w
            status = _run_child(request, policy, limits, places, code, cgroup)
        finally:
            os._exit(status)
    for fd in (*theirs, st_w):
        if fd is not None:
            os.close(fd)
    return Child(pid=pid, ends=ours, status_fd=st_r)


def _result(ok: bool, output: Any, error: dict | None, duration_ms: int = 0) -> dict:
    return {"t": "result", "ok": ok, "output": output, "error": error, "duration_ms": duration_ms}


def _run_child(  # pragma: no cover - runs in the child
    request: dict,
    policy: sandbox.Policy,
    limits: dict,
    places: dict[int, int],
    code: CodeType | Exception,
    cgroup=None,
) -> int:
    exit_code = 70
    serving = SERVE_FD in places
    try:
        _become_child(places)
        source = code  # compiled by the fork server: the run's user may not read the file
        if policy.enabled:
            try:
                if cgroup is not None:
                    cgroup.enter()  # runs/process/cgroups.py: before anything is forked
                sandbox.enter(policy, limits, status_fd=STATUS_FD)
            except (sandbox.SandboxError, cgroups.CgroupError) as exc:
                failed = _result(
                    False, None, error_dict(f"could not sandbox the run: {exc}", "sandbox_failed")
                )
                if serving:  # told to the first run, by P1, which runs no task code
                    _serve(request, limits, source, failed)
                else:
                    _send_raw(failed)
                return 70
        else:
            # No own user here: RLIMIT_NPROC would count Studio's processes, so it is left out.
            sandbox.apply_limits({k: v for k, v in limits.items() if k != "max_processes"})
        if serving:
            exit_code = _serve(request, limits, source)
        else:
            exit_code = _execute_task(request, limits, source)
    except BaseException as exc:  # noqa: BLE001 - whatever happens, the parent must hear of it
        try:
            detail = traceback.format_exc()
            os.write(2, detail.encode(errors="replace"))
            error = sandbox.limit_exceeded(exc, limits) or error_dict(
                "the task process crashed", "crashed"
            )
            _send_raw(_result(False, None, {**error, "detail": detail}))
        except BaseException:  # noqa: BLE001
            pass
    return exit_code


def _execute_task(
    request: dict, limits: dict, source: CodeType | Exception
) -> int:  # pragma: no cover
    """In the task's process, sandbox entered: load its file, run it, send the result."""
    loaded = _load(request, source)
    if isinstance(loaded, dict):
        _send_raw(loaded)
        return 1
    return _run_task(loaded, request, limits)


def _load(request: dict, source: CodeType | Exception) -> TaskDefinition | dict:
    """The task file's definition, or the result that tells the run why it failed to load."""
    try:
        if isinstance(source, Exception):
            raise ValueError(str(source))
        return load_task_file(Path(request["path"]), request["task_id"], source)
    except ValueError as exc:
        return _result(
            False, None, error_dict(f"the task file failed to load: {exc}", "task_load_failed")
        )


def _run_task(
    definition: TaskDefinition, request: dict, limits: dict
) -> int:  # pragma: no cover - runs in a task's process
    """Run one run of a loaded task on fds 1-4 and send its result; its exit code."""
    ctx = ChildContext(
        events_fd=EVENTS_FD,
        control_fd=CONTROL_FD,
        input=request.get("input") or {},
        config=request.get("config") or {},
        env=filtered_env(definition.env_allowlist),
        project_id=request.get("project_id"),
        run_id=request.get("run_id"),
        attempt=request.get("attempt", 1),
    )
    outcome = execute(definition, ctx, check_output=False)  # the worker checks the output
    if not outcome.ok:
        hit = sandbox.limit_exceeded(outcome.exception, limits)
        if hit is not None:
            outcome.error = {**hit, "detail": outcome.error.get("detail")}
        if outcome.error.get("detail"):
            sys.stderr.write(outcome.error["detail"])  # the traceback, in the live log too
    sys.stdout.flush()
    sys.stderr.flush()
    ctx._send(_result(outcome.ok, outcome.output, outcome.error, outcome.duration_ms))
    return outcome.exit_code


# --- a reused process: one task process serving its runs one after another ------------------


def send_run(sock: socket.socket, request: dict, ends: list[int]) -> None:
    """Hand a run to a reused process (the worker's side): its request and the task's ends of
    its four pipes [stdout, stderr, events, control]. Raises OSError if the process is gone."""
    body = json.dumps(request, default=str).encode()
    socket.send_fds(sock, [_HEADER.pack(len(body), 0)], ends)
    sock.sendall(body)


def _receive(  # pragma: no cover - runs in a task's process
    sock: socket.socket, most_fds: int
) -> tuple[dict, list[int], bytes] | None:
    """(request, descriptors, compiled code) from the fork server or the worker; None when it
    hung up or sent no descriptor."""
    header, fds, _, _ = socket.recv_fds(sock, _HEADER.size, most_fds)
    if len(header) < _HEADER.size or not fds:
        for fd in fds:
            os.close(fd)
        return None
    n_body, n_code = _HEADER.unpack(header)
    data = _recv_exactly(sock, n_body + n_code)
    return json.loads(data[:n_body]), fds, data[n_body:]


def _serve(
    request: dict, limits: dict, source: CodeType | Exception, failed: dict | None = None
) -> int:  # pragma: no cover - runs in a reused task process
    """Serve the runs the worker sends on SERVE_FD, one at a time, until it hangs up (exit 0).

    The task file is loaded once, in the first run (module-level output is that run's). A file
    that fails to load, or a sandbox that failed (`failed`), is reported to the first run, and
    the process ends after it ("last")."""
    sock = socket.socket(fileno=SERVE_FD)
    os.set_inheritable(SERVE_FD, False)  # not for what a run executes ...
    os.register_at_fork(after_in_child=sock.close)  # ... nor for what it forks
    definition = None
    while True:
        received = _receive(sock, len(RUN_FDS))
        if received is None:
            return 0  # the worker let this process go
        run, fds, _ = received
        if len(fds) != len(RUN_FDS):
            return 70
        _place(dict(zip(RUN_FDS, fds, strict=True)))
        _text_streams()  # fresh, whatever the previous run did to sys.stdout and sys.stderr
        if definition is None and failed is None:
            loaded = _load(request, source)
            if isinstance(loaded, dict):
                failed = loaded
            else:
                definition = loaded
        if failed is not None:
            _send_raw(failed)
            code = 1
        else:
            code = _run_task(definition, run, limits)
        _drop_run_fds()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        done = {
            "done": code,
            "cpu_ms": int((usage.ru_utime + usage.ru_stime) * 1000),
            "last": failed is not None,
        }
        sock.sendall(json.dumps(done).encode() + b"\n")
        if failed is not None:
            return 1


def _drop_run_fds() -> None:  # pragma: no cover - runs in a reused task process
    """The run is over: /dev/null on fds 1-4, so the worker reads the end of its pipes (unless
    something the run left running holds them) and nothing more of this process reaches them."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    _place(dict.fromkeys(RUN_FDS, os.open(os.devnull, os.O_RDWR)))


# --- a sandbox prepared ahead of its run ---------------------------------------------------------
# Setting a sandbox up costs a clone, a few mounts and the fork of the task's process; the fork
# server keeps one ready (with the default limits and network), its task process already forked
# and waiting, so that a run that fits it only waits for its request to arrive.

P1_FD = 8  # P1's end of its socket to the fork server: the run's status descriptor comes here
TASK_FD = 9  # the waiting task process's end of its socket: the run's pipes and request come here
_HEADER = struct.Struct("!II")


@dataclass
class Warm:
    pid: int  # its P1: the run's process (group) once a run is handed to it
    sock: socket.socket  # to P1
    task_sock: socket.socket  # to the waiting task process

    def close(self) -> None:
        self.sock.close()
        self.task_sock.close()


def fits_warm(request: dict) -> bool:
    """A run can use the prepared sandbox: default limits, with network."""
    return not request.get("limits") and request.get("network", True) is not False


def prepare_warm(policy: sandbox.Policy, cgroup=None, *, sibling: bool = False) -> Warm:
    """Clone a prepared sandbox's P1 (with `sibling`, as a child of this process's parent: the
    preparer's, runs/process/preparer.py) and return the sockets to it and its task process."""
    ours, theirs = socket.socketpair()
    task_ours, task_theirs = socket.socketpair()
    try:
        pid = sandbox.clone_namespaces(policy, sibling=sibling)  # the prepared sandbox's PID 1
    except OSError:
        for sock in (ours, theirs, task_ours, task_theirs):
            sock.close()
        raise
    if pid == 0:  # pragma: no cover - the prepared sandbox
        status = 70
        try:
            status = _run_warm(policy, theirs.fileno(), task_theirs.fileno(), cgroup)
        finally:
            os._exit(status)
    theirs.close()
    task_theirs.close()
    if policy.own_uids:
        # Set up (and rehearse) only when no other process wants the CPU, so that preparing the
        # next run's sandbox never slows down a run: the fork server restores the normal
        # priority when it hands a run over (`promote`: as root only; an ordinary user may
        # lower a priority but not raise it back). Done here, by the parent, and never by P1
        # itself: P1 may not have run a single line yet when its run comes and `promote` lifts
        # it, and lowering itself afterwards would leave that run at idle priority, starved
        # for as long as anything else wants the CPU. (The preparer runs at idle priority, so
        # what it clones already does; this only matters for the fork server's own refill.)
        try:
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            pass  # gone already: handing a run to it fails, and the run takes the slow path
    return Warm(pid, ours, task_ours)


def hand_to_warm(warm: Warm, request: dict, code: CodeType | Exception) -> Child:
    """Give `request` to the prepared sandbox `warm`: the run's status descriptor to its P1; the
    run's pipes, request and code to its waiting task process. (As root, `promote` it first.)"""
    body = json.dumps(
        {**request, "load_error": str(code) if isinstance(code, Exception) else None}
    ).encode()
    compiled = b"" if isinstance(code, Exception) else marshal.dumps(code)
    ours, theirs = _ends(request)
    st_r, st_w = os.pipe()
    try:
        socket.send_fds(warm.sock, [b"s"], [st_w])
        socket.send_fds(warm.task_sock, [_HEADER.pack(len(body), len(compiled))], theirs)
        warm.task_sock.sendall(body + compiled)
    except OSError:
        for fd in (*ours, st_r):
            os.close(fd)
        raise
    finally:
        warm.close()
        for fd in (*theirs, st_w):
            os.close(fd)
    return Child(pid=warm.pid, ends=ours, status_fd=st_r)


def promote(p1: int) -> bool:
    """Give the prepared sandbox `p1` (and its task process) the CPU at the normal priority: it
    was set up at idle priority (`prepare_warm`), which only root can lift again. A sandbox
    still being set up finishes at the normal priority too.

    False when P1 has no task process to be seen yet: then either P1 has not forked it, and it
    will be born at the normal priority, or P1 is forking it right now, and it was born at the
    idle one (a child has its parent's priority from the fork's start, but is among its
    parent's children only at its end). The caller asks again shortly, until this is True."""
    pids = [p1]
    try:
        with open(f"/proc/{p1}/task/{p1}/children") as f:
            pids += [int(pid) for pid in f.read().split()]
    except OSError:
        return True  # gone: the hand-off fails and the run takes the slow path
    for pid in pids:
        try:
            os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass
    return len(pids) > 1


def _recv_exactly(sock: socket.socket, size: int) -> bytes:  # pragma: no cover
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("the fork server hung up")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _run_warm(  # pragma: no cover
    policy: sandbox.Policy, p1_fd: int, task_fd: int, cgroup=None
) -> int:
    """P1 of a prepared sandbox; returns (exits) in its task process once a run came."""
    if cgroup is not None:
        try:
            cgroup.enter()  # runs/process/cgroups.py: before anything is forked
        except cgroups.CgroupError:
            return 70
    os.setsid()
    die_with_parent()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    devnull = os.open(os.devnull, os.O_RDWR)
    _place({0: devnull, 1: devnull, 2: devnull, P1_FD: p1_fd, TASK_FD: task_fd})
    os.closerange(3, P1_FD)
    os.closerange(TASK_FD + 1, _max_fd())
    visible = filtered_env()
    for name in list(os.environ):
        if name not in visible:
            del os.environ[name]

    def status_descriptor() -> int:  # in P1, once the task's process is forked and waiting
        os.close(TASK_FD)
        _, fds, _, _ = socket.recv_fds(socket.socket(fileno=P1_FD), 1, 1)
        if len(fds) != 1:
            os._exit(0)  # the fork server went away, or stopped needing us
        return fds[0]

    limits = dict(policy.limits)
    try:
        sandbox.enter(policy, limits, status_from=status_descriptor)
    except sandbox.SandboxError:
        return 70
    # The task's process, forked ahead of its run: rehearse, wait for the run, put its pipes in
    # their places, then go on as any child.
    os.close(P1_FD)
    if not select.select([TASK_FD], [], [], 0)[0]:  # a run already waiting needs no warm-up
        _rehearse(limits)
    sock = socket.socket(fileno=TASK_FD)
    received = _receive(sock, len(RUN_FDS))
    if received is None:
        os._exit(0)  # the fork server went away, or stopped needing us
    sock.close()
    request, fds, compiled = received
    code = marshal.loads(compiled) if compiled else ValueError(request.get("load_error"))
    serving = bool(request.get("reuse"))
    if len(fds) != (1 if serving else len(RUN_FDS)):
        os._exit(70)
    # A run's pipes on fds 1-4, or a reused process's socket to the worker on SERVE_FD.
    places = {SERVE_FD: fds[0]} if serving else dict(zip(RUN_FDS, fds, strict=True))
    _place(places)
    _text_streams()
    try:
        if serving:
            return _serve(request, limits, code)
        return _execute_task(request, limits, code)
    except BaseException as exc:  # noqa: BLE001 - whatever happens, the parent must hear of it
        detail = traceback.format_exc()
        os.write(2, detail.encode(errors="replace"))
        error = sandbox.limit_exceeded(exc, limits) or error_dict(
            "the task process crashed", "crashed"
        )
        _send_raw(_result(False, None, {**error, "detail": detail}))
        return 70


# A task that does nothing, run once by a prepared task process before its run arrives.
_REHEARSAL = compile(
    "from runs.definitions import task\n\n\n@task\ndef run(ctx):\n    return {'ok': True}\n",
    "<rehearsal>",
    "exec",
)
_REHEARSAL_REQUEST = json.dumps(
    {"task_id": "rehearsal", "path": "/rehearsal.py", "input": {}, "config": {}, "attempt": 1}
).encode()


def _rehearse(limits: dict) -> None:  # pragma: no cover - runs in a prepared task process
    """Walk the path of a run once, with a task that does nothing and its events thrown away.

    A forked process pays a page fault for every page of its parent's memory it writes to for
    the first time, and running Python writes to every object it touches (reference counts):
    most of what a no-op run costs is those faults. Taken here, while the process waits for its
    run, they are off the run's path. What the rehearsal leaves is the same in every process
    and belongs to no run: its module is removed, and the run's descriptors replace these."""
    os.dup2(0, EVENTS_FD)  # /dev/null, as are 0-2 by now
    os.dup2(0, CONTROL_FD)
    try:
        _text_streams()
        code = marshal.loads(marshal.dumps(_REHEARSAL))
        _execute_task(json.loads(_REHEARSAL_REQUEST), limits, code)
    except Exception:  # noqa: BLE001 - only a warm-up: the run itself reports what fails
        pass
    finally:
        for name in [n for n in sys.modules if n.startswith("studio_tasks.")]:
            del sys.modules[name]
        os.close(EVENTS_FD)  # as before: the run's descriptors come in the lowest free numbers
        os.close(CONTROL_FD)


def _send_raw(message: dict) -> None:
    os.write(EVENTS_FD, (json.dumps(message, default=str) + "\n").encode())


def _become_child(places: dict[int, int]) -> None:  # pragma: no cover
    """`places`: {number: descriptor} of the run's pipes (RUN_FDS), or of a reused process's
    socket (SERVE_FD), and of the status pipe (STATUS_FD)."""
    os.setsid()  # own process group: a kill reaches everything the task spawned
    die_with_parent()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)  # the fork server's; a task's own signal handlers must not write to it
    devnull = os.open(os.devnull, os.O_RDWR)
    # The pipes on fixed numbers (/dev/null where a reused process has no run yet), then drop
    # every other inherited descriptor (other runs' pipes, database and queue sockets) so
    # nothing leaks between runs.
    places = {0: devnull, **dict.fromkeys(RUN_FDS, devnull), **places}
    _place(places)
    for fd in range(max(places)):
        if fd not in places:
            try:
                os.close(fd)
            except OSError:
                pass
    os.closerange(max(places) + 1, _max_fd())
    _text_streams()
    # Studio's own settings and secrets are not the task's business, nor its subprocesses'.
    visible = filtered_env()
    for name in list(os.environ):
        if name not in visible:
            del os.environ[name]


def _place(places: dict[int, int]) -> None:  # pragma: no cover - runs in a run's processes
    """Put descriptors on fixed numbers ({number: fd}), whatever numbers they have now: each is
    first copied above every target, so that moving one never overwrites another that has yet
    to move (a socket received on descriptor 8 that is to go on 9, while 8 is another's place).
    The originals are closed, but for those that are now one of the places."""
    above = max(places) + 1
    parked = {number: fcntl.fcntl(fd, fcntl.F_DUPFD, above) for number, fd in places.items()}
    for number, fd in parked.items():
        os.dup2(fd, number)
        os.close(fd)
    for fd in set(places.values()) - set(places):
        os.close(fd)


def _text_streams() -> None:  # pragma: no cover
    """sys.stdin/stdout/stderr on fds 0-2, line-buffered UTF-8, whatever they were before."""
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )


def exit_code_of(wait_status: int) -> int:
    """A waitpid status as shells report it: the exit code, or 128+N when killed by signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 65536


def die_with_parent(signum: int = signal.SIGKILL) -> None:  # pragma: no cover
    """Ask Linux to send us `signum` when our parent dies, so nothing Studio starts (a run's
    process, the fork server, serve's web server and worker) outlives what started it."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(70)
