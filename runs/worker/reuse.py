"""Warm processes for `@task(reuse_process=True)`: one sandboxed task process serves a task's
runs one after another, so a run skips creating its process (most of what a short run costs).

A warm process is keyed by what must never be shared: the task, its file as it is now (path,
mtime and size: an edited file gets a new process), the run's project (a run's input may hold
a project's secrets), and the definition's limits, network and env_allowlist. Each serves one
run at a time; a worker process keeps at most STUDIO_WORKERS of one key (one per worker thread)
and at most 2 x STUDIO_WORKERS idle ones in all, dropping the longest idle first.

`acquire()` hands a run to an idle process of its key, or to a new one from the fork server,
and returns a `ReusedChild`, which the Supervisor drives like a RemoteChild. After the run a
process goes back to the pool only if it reported the run done and nothing killed it. It is
replaced after a cancel, a timeout, a crash, any kill; after STUDIO_REUSE_PROCESS_MAX_RUNS
runs; after STUDIO_REUSE_PROCESS_IDLE_SECONDS without one; when its task file changed; and once
it has used half its CPU limit (RLIMIT_CPU counts the whole process, every run together).
`studio_reuse_process_runs_total` {process: warm, new} and `studio_reuse_processes_ended_total`
{reason} count how often a run found a warm process, and why processes were replaced.
"""

from __future__ import annotations

import json
import logging
import os
import select
import threading
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from django.conf import settings

from .. import metrics, sandboxing
from ..definitions import TaskDefinition
from ..process.child import run_pipes, send_run
from ..process.forkserver import ServingProcess, close_fds, kill_group
from . import claim as engine

log = logging.getLogger(__name__)

DONE_TIMEOUT = 10.0  # reading the rest of a "done" line once its first byte arrived


class Key(NamedTuple):
    """What a warm process may be shared by: runs whose keys are equal."""

    task_id: str
    path: str
    stamp: tuple[int, int] | None  # the file's mtime and size: an edited file, a new process
    project_id: str  # never shared between projects: a run's input may hold their secrets
    limits: str
    network: bool
    env_allowlist: tuple[str, ...] | None


@dataclass
class Warm:
    """One warm process of the pool."""

    key: Key
    process: ServingProcess
    cpu_budget_ms: int  # retired past this: half its CPU limit
    runs: int = 0
    cpu_ms: int = 0
    idle_since: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        """Still waiting for a run: its socket has nothing to read (EOF means it ended)."""
        try:
            readable, _, _ = select.select([self.process.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def end(self, reason: str) -> None:
        """Kill it (and all it started); `reason`, for the metrics: why it is not kept."""
        kill_group(self.process.pid)
        self.process.close()
        _count_ended(reason)


@metrics.safely
def _count_ended(reason: str) -> None:
    metrics.m().reuse_processes_ended.labels(reason=reason).inc()


@metrics.safely
def _count_run(fresh: bool) -> None:
    metrics.m().reuse_process_runs.labels(process="new" if fresh else "warm").inc()


_idle: dict[Key, list[Warm]] = {}  # idle processes, the most recently used last
_lock = threading.Lock()


def _key(definition: TaskDefinition, project_id: str) -> Key:
    try:
        st = os.stat(definition.path)
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None  # the fork server tells the run why the file cannot be read
    return Key(
        definition.id,
        definition.path,
        stamp,
        str(project_id),
        json.dumps(definition.limits, sort_keys=True),
        definition.network,
        definition.env_allowlist,
    )


def acquire(definition: TaskDefinition, request: dict) -> ReusedChild:
    """Hand the run `request` (as for ForkServer.spawn) to a warm process of its key."""
    key = _key(definition, request["project_id"])
    while True:
        warm = _take_idle(key)
        fresh = warm is None
        if fresh:
            warm = _start(definition, key)
        try:
            child = ReusedChild(warm, request)
        except OSError:
            # It ended while idle (killed from outside, its fork server gone): this run gets
            # another. A process just started that cannot take its first run is a failure.
            warm.end("start_failed" if fresh else "died")
            if fresh:
                raise
            continue
        _count_run(fresh)
        return child


def _take_idle(key: Key) -> Warm | None:
    now = time.monotonic()
    with _lock:
        stale = _sweep(now, changed=key)
        warm = None
        idle = _idle.get(key)
        while idle and warm is None:
            candidate = idle.pop()
            if candidate.alive():
                warm = candidate
            else:
                stale.append((candidate, "died"))
        if not idle:
            _idle.pop(key, None)
    for gone, reason in stale:
        gone.end(reason)
    return warm


def _sweep(now: float, *, changed: Key | None = None) -> list[tuple[Warm, str]]:
    """Take out (under the lock) the idle processes past their idle time, and those whose
    task file has changed since (`changed`: a key made now, with the file's stamp now); each
    with the reason it goes."""
    limit = settings.STUDIO_REUSE_PROCESS_IDLE_SECONDS
    stale = []
    for key in list(_idle):
        outdated = changed is not None and key.path == changed.path and key.stamp != changed.stamp
        keep = []
        for warm in _idle[key]:
            if outdated:
                stale.append((warm, "file_changed"))
            elif now - warm.idle_since > limit:
                stale.append((warm, "idle"))
            else:
                keep.append(warm)
        if keep:
            _idle[key] = keep
        else:
            del _idle[key]
    return stale


def _start(definition: TaskDefinition, key: Key) -> Warm:
    process = engine.fork_server().serve(
        definition.id, path=definition.path, limits=definition.limits, network=definition.network
    )
    cpu_seconds = {**sandboxing.policy().limits, **(definition.limits or {})}["cpu_seconds"]
    return Warm(key, process, cpu_budget_ms=int(cpu_seconds) * 500)


def _release(warm: Warm) -> None:
    """A run ended cleanly in `warm`: back to the pool, unless it is due to be replaced."""
    warm.runs += 1
    due = _due(warm)
    if due:
        warm.end(due)
        return
    warm.idle_since = time.monotonic()
    most = 2 * settings.STUDIO_WORKERS
    with _lock:
        _idle.setdefault(warm.key, []).append(warm)
        everyone = [w for idle in _idle.values() for w in idle]
        surplus = sorted(everyone, key=lambda w: w.idle_since)[: max(0, len(everyone) - most)]
        for gone in surplus:
            _idle[gone.key].remove(gone)
            if not _idle[gone.key]:
                del _idle[gone.key]
    for gone in surplus:
        gone.end("surplus")


def _due(warm: Warm) -> str | None:
    """Why `warm`, its run just over, is to be replaced rather than kept; None: kept."""
    if warm.runs >= settings.STUDIO_REUSE_PROCESS_MAX_RUNS:
        return "max_runs"
    if warm.cpu_ms >= warm.cpu_budget_ms:
        return "cpu"
    if engine.draining():
        return "stopping"
    return None


def retire_idle(*, everything: bool = False) -> None:
    """End the idle processes past STUDIO_REUSE_PROCESS_IDLE_SECONDS (the sweeper calls this);
    with `everything`, every idle one (the worker is stopping)."""
    with _lock:
        if everything:
            stale = [(w, "stopping") for idle in _idle.values() for w in idle]
            _idle.clear()
        else:
            stale = _sweep(time.monotonic())
    for warm, reason in stale:
        warm.end(reason)


class ReusedChild:
    """One run in a warm process, with what the Supervisor needs of a child (as RemoteChild):
    the run's own four pipes, what becomes readable when it ends, its exit code, kill()
    (the whole process) and settle() (back to the pool if the run ended cleanly)."""

    def __init__(self, warm: Warm, request: dict):
        self.warm = warm
        self.pid = warm.process.pid
        self.limit: str | None = None
        self.done: dict | None = None
        self.killed = False
        self.settled = False
        ours, theirs = run_pipes()
        try:
            send_run(warm.process.sock, request, theirs)
        except OSError:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        self.stdout_fd, self.stderr_fd, self.events_fd, self.control_fd = ours

    def exit_source(self):
        """Readable when the process reports the run done, or ends."""
        return self.warm.process.sock

    def read_exit_code(self) -> int | None:
        """The run's exit code: "done"'s, or, if the process ended, the process's."""
        sock = self.warm.process.sock
        data = b""
        sock.settimeout(DONE_TIMEOUT)
        try:
            while not data.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        finally:
            sock.settimeout(None)
        try:
            done = json.loads(data) if data.count(b"\n") == 1 else None
            code = int(done["done"])
        except (ValueError, TypeError, KeyError):
            # It ended (EOF), or sent something else than one "done": it serves no more runs.
            self.done = None
            code, self.limit = self.warm.process.read_exit_code()
            return code
        self.done = done
        self.warm.cpu_ms = int(done.get("cpu_ms") or 0)
        return code

    def kill(self) -> None:
        """Stop the run: the whole process (a run's leftovers are the process's). A run that
        has settled no longer owns its process, which may be serving another run by now."""
        if not self.settled:
            self.killed = True
            kill_group(self.pid)

    def settle(self) -> None:
        """The run is over: its process goes back to the pool if it reported the run done and
        nothing killed it; otherwise it is ended."""
        if self.settled:
            return
        self.settled = True
        if self.killed:  # cancelled, timed out, taken away
            self.warm.end("killed")
        elif self.done is None:  # it died, or said something else than "done"
            self.warm.end("crashed")
        elif self.done.get("last"):  # its task file failed to load: it serves no more runs
            self.warm.end("load_failed")
        else:
            _release(self.warm)

    def close(self) -> None:
        close_fds(self.stdout_fd, self.stderr_fd, self.events_fd, self.control_fd)
