"""A cgroup per run for its memory and its processes, where the machine offers one. No Django.

Detected once, when the fork server starts (`setup`): cgroup v2 with the memory and pids
controllers delegated to us is preferred, else the v1 `memory` and `pids` hierarchies where we
may create cgroups (as root, usually), else none, and the rlimits alone hold (sandbox.py).

Per run, a cgroup `studio-<fork server pid>/run-<n>` below the fork server's own cgroup:
  memory_mb      v2 memory.max (+ memory.swap.max 0); v1 memory.limit_in_bytes (+ memsw):
                 the run's processes together, tmpfs pages they write included. Past it the
                 kernel's OOM killer kills one of them; the fork server sees the cgroup's OOM
                 counter move and reports `memory_limit`. RLIMIT_AS is then not set.
  max_processes  pids.max = max_processes + 1 (the run's init, P1, is Studio's own): fork
                 fails with EAGAIN past it, which the run reports as `process_limit`.
                 RLIMIT_NPROC is then not set.
The fork server names a run's cgroup before forking the run's first process (the warm
sandbox's ahead of its run); that process creates it (as root: otherwise the fork server has
already) and moves itself in (`RunCgroup.enter`) before it forks anything, and the fork server
removes the cgroup once it has reaped that process (the kernel has ended every process of the
run's PID namespace by then), off any run's critical path.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

CONTROLLERS = ("memory", "pids")
EXTRA_PROCESSES = 1  # the run's P1 (its PID 1), counted by pids.max


class CgroupError(OSError):
    pass


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _counter(path: str, name: str) -> int:
    """The value of `name` in a flat-keyed cgroup file ("oom_kill 3"); 0 when absent."""
    try:
        for line in _read(path).splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


@dataclass
class RunCgroup:
    """One run's cgroup(s): one directory on v2, one per controller on v1."""

    version: int
    dirs: dict[str, str]  # controller -> directory (v2: the same directory for both)
    limits: dict = field(default_factory=dict)
    made: bool = False  # the directories exist and hold the limits

    def make(self) -> None:
        """Create the directories and write the limits: in the fork server, or (as root) in the
        run's first process, which then spends that time rather than the fork server."""
        try:
            for path in dict.fromkeys(self.dirs.values()):
                os.mkdir(path)
            self._limit()
        except OSError:
            self.remove()
            raise
        self.made = True

    def _limit(self) -> None:
        memory = self.limits.get("memory_mb")
        if "memory" in self.dirs and memory:
            path, size = self.dirs["memory"], str(int(memory) * 2**20)
            if self.version == 2:
                _write(os.path.join(path, "memory.max"), size)
                if os.path.exists(os.path.join(path, "memory.swap.max")):
                    _write(os.path.join(path, "memory.swap.max"), "0")
            else:
                _write(os.path.join(path, "memory.limit_in_bytes"), size)
                if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
                    _write(os.path.join(path, "memory.memsw.limit_in_bytes"), size)
        processes = self.limits.get("max_processes")
        if "pids" in self.dirs and processes:
            pids_max = os.path.join(self.dirs["pids"], "pids.max")
            _write(pids_max, str(int(processes) + EXTRA_PROCESSES))

    def enter(self) -> None:
        """Move this process in (the run's first process, before it forks anything), making
        the cgroup first if the fork server left that to it."""
        global current
        if not self.made:
            try:
                self.make()
            except OSError as exc:
                why = f"cannot create the run's cgroup: {exc}"
                raise CgroupError(exc.errno, why) from None
        for path in dict.fromkeys(self.dirs.values()):
            try:
                _write(os.path.join(path, "cgroup.procs"), "0")
            except OSError as exc:
                why = f"cannot enter the run's cgroup {path}: {exc}"
                raise CgroupError(exc.errno, why) from None
        current = self

    def memory_exceeded(self) -> bool:
        path = self.dirs.get("memory")
        if path is None:
            return False
        if self.version == 2:
            return _counter(os.path.join(path, "memory.events"), "oom_kill") > 0
        try:
            control = _read(os.path.join(path, "memory.oom_control"))
            if "oom_kill " in control:
                return _counter(os.path.join(path, "memory.oom_control"), "oom_kill") > 0
            return int(_read(os.path.join(path, "memory.failcnt"))) > 0  # an older kernel
        except (OSError, ValueError):
            return False

    def processes_exceeded(self) -> bool:
        path = self.dirs.get("pids")
        return path is not None and _counter(os.path.join(path, "pids.events"), "max") > 0

    def verdict(self) -> str | None:
        """The limit (a sandbox.LIMIT_NAMES name) the run ran into, as its cgroup counted."""
        if self.memory_exceeded():
            return "memory_mb"
        if self.processes_exceeded():
            return "max_processes"
        return None

    def remove(self) -> bool:
        """Remove the cgroup (False: processes are still leaving it; try again later)."""
        done = True
        for path in dict.fromkeys(self.dirs.values()):
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                done = False
        return done


@dataclass
class Cgroups:
    """Where this fork server makes its runs' cgroups."""

    version: int
    parents: dict[str, str]  # controller -> studio-<pid> directory
    serial: int = 0

    def describe(self) -> str:
        what = " and ".join(
            {"memory": "memory (the run's total)", "pids": "processes"}[c] for c in self.parents
        )
        return f"cgroup v{self.version} per run for {what}"

    def new(self, limits: dict, *, make: bool = True) -> RunCgroup:
        self.serial += 1
        name = f"run-{self.serial}"
        if self.version == 2:
            path = os.path.join(next(iter(self.parents.values())), name)  # one for all
            dirs = {c: path for c in self.parents}
        else:
            dirs = {c: os.path.join(parent, name) for c, parent in self.parents.items()}
        made = RunCgroup(self.version, dirs, limits)
        if make:
            made.make()
        return made


# --- detection ----------------------------------------------------------------------------------


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount point, root inside its hierarchy, fstype, super options) of cgroup file systems."""
    found = []
    try:
        lines = _read("/proc/self/mountinfo").splitlines()
    except OSError:
        return found
    for line in lines:
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if len(fields) < 5 or len(rest) < 3 or rest[0] not in ("cgroup", "cgroup2"):
            continue
        point = fields[4].replace("\\040", " ")
        found.append((point, fields[3], rest[0], set(rest[2].split(","))))
    return found


def _own_cgroups() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    own = {}
    try:
        for line in _read("/proc/self/cgroup").splitlines():
            _, names, path = line.split(":", 2)
            for name in names.split(",") if names else [""]:
                own[name] = path
    except (OSError, ValueError):
        pass
    return own


def _directory(point: str, root: str, path: str) -> str | None:
    if root != "/" and not (path == root or path.startswith(root.rstrip("/") + "/")):
        return None  # our cgroup is outside what this mount shows
    relative = path[len(root) :] if root != "/" else path
    return os.path.join(point, relative.lstrip("/"))


def _sweep(directory: str) -> None:
    """Remove what fork servers that died without cleaning up left next to us (best effort)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not name.startswith("studio-") or not name[7:].isdigit():
            continue
        if os.path.exists(f"/proc/{name[7:]}"):
            continue
        parent = os.path.join(directory, name)
        try:
            for child in os.listdir(parent):
                if child.startswith("run-"):
                    os.rmdir(os.path.join(parent, child))
            os.rmdir(parent)
        except OSError:
            pass


def _v2(mounts, own) -> tuple[Cgroups | None, str]:
    v2 = [m for m in mounts if m[2] == "cgroup2"]
    if not v2 or "" not in own:
        return None, "no cgroup v2"
    point, root, _, _ = v2[0]
    here = _directory(point, root, own[""])
    if here is None:
        return None, "our cgroup v2 is not visible"
    try:
        available = set(_read(os.path.join(here, "cgroup.controllers")).split())
    except OSError as exc:
        return None, f"cgroup v2: {exc}"
    wanted = [c for c in CONTROLLERS if c in available]
    if not wanted:
        return None, "cgroup v2 without the memory and pids controllers"
    try:
        enabled = set(_read(os.path.join(here, "cgroup.subtree_control")).split())
        missing = [c for c in wanted if c not in enabled]
        if missing:  # only possible where our cgroup holds no process but the root's
            _write(os.path.join(here, "cgroup.subtree_control"), " ".join(f"+{c}" for c in missing))
        _sweep(here)
        parent = os.path.join(here, f"studio-{os.getpid()}")
        os.mkdir(parent)
        try:
            _write(
                os.path.join(parent, "cgroup.subtree_control"), " ".join(f"+{c}" for c in wanted)
            )
        except OSError:
            os.rmdir(parent)
            raise
    except OSError as exc:
        return None, f"cgroup v2 controllers not delegated to Studio's cgroup {here}: {exc}"
    return Cgroups(2, {c: parent for c in wanted}), ""


def _v1(mounts, own) -> tuple[Cgroups | None, str]:
    parents, problems = {}, []
    for controller in CONTROLLERS:
        mount = next((m for m in mounts if m[2] == "cgroup" and controller in m[3]), None)
        if mount is None or controller not in own:
            problems.append(f"no v1 {controller} hierarchy")
            continue
        here = _directory(mount[0], mount[1], own[controller])
        if here is None:
            problems.append(f"our v1 {controller} cgroup is not visible")
            continue
        _sweep(here)
        parent = os.path.join(here, f"studio-{os.getpid()}")
        try:
            os.mkdir(parent)
        except OSError as exc:
            problems.append(f"v1 {controller}: {exc}")
            continue
        parents[controller] = parent
    if not parents:
        return None, "; ".join(problems)
    return Cgroups(1, parents), "; ".join(problems)


active: Cgroups | None = None  # this fork server's, inherited by every process it forks
current: RunCgroup | None = None  # in a run's process: the cgroup it entered
_runs: dict[int, RunCgroup] = {}  # run pid -> its cgroup (in the fork server)
_leaving: list[RunCgroup] = []  # ended runs whose cgroup was still busy


def setup() -> str:
    """Detect, once, what cgroups this fork server can give its runs; say what (for the log)."""
    global active
    mounts, own = _mounts(), _own_cgroups()
    found, why_not_v2 = _v2(mounts, own)
    if found is None or len(found.parents) < len(CONTROLLERS):
        v1, why_not_v1 = _v1(mounts, own)
        if v1 is not None and (found is None or len(v1.parents) > len(found.parents)):
            if found is not None:
                _remove_parents(found)
            found = v1
        elif found is None:
            return f"no cgroups: limits are rlimits ({why_not_v2}; {why_not_v1})"
    active = found
    return found.describe()


def _remove_parents(found: Cgroups) -> None:
    for path in dict.fromkeys(found.parents.values()):
        try:
            os.rmdir(path)
        except OSError:
            pass


def claim(limits: dict, *, make: bool = True) -> RunCgroup | None:
    """A new cgroup with these limits for a run about to be forked (None: no cgroups here).
    With `make=False` only its name is chosen: the run's first process makes it (as root)."""
    if active is None:
        return None
    try:
        return active.new(limits, make=make)
    except OSError as exc:
        raise CgroupError(exc.errno, f"cannot create a cgroup for the run: {exc}") from None


def track(pid: int, cg: RunCgroup | None) -> None:
    if cg is not None:
        _runs[pid] = cg


def verdict(pid: int, exit_code: int | None) -> str | None:
    """The limit a run that ended badly ran into, per its cgroup (None when it exited 0)."""
    cg = _runs.get(pid)
    if cg is None or not exit_code:
        return None
    return cg.verdict()


MAX_LEAVING = 32  # cgroups waiting for removal before the fork server removes them anyway


def release(pid: int | None = None, cg: RunCgroup | None = None) -> None:
    """The run (its first process, reaped) is over: its cgroup is to be removed. The removal
    waits (`tidy`) for a moment the fork server has nothing else to do, since removing a cgroup
    can block for a kernel grace period (measured: up to 11 ms under load), unless too many
    are waiting."""
    cg = _runs.pop(pid, None) if pid is not None else cg
    if cg is not None:
        _leaving.append(cg)
    if len(_leaving) > MAX_LEAVING:
        tidy()


def pending() -> bool:
    """Whether cgroups are waiting for `tidy`."""
    return bool(_leaving)


def tidy() -> None:
    """Remove the cgroups of runs that are over (those still busy stay for the next time)."""
    for leaving in list(_leaving):
        try:
            if leaving.remove():
                _leaving.remove(leaving)
        except OSError:
            _leaving.remove(leaving)  # gone wrong for good: the next start sweeps it


def release_all(wait: float = 2.0) -> None:
    """The fork server is going (its runs' processes killed): remove every cgroup it made,
    waiting up to `wait` seconds for the killed processes to leave them."""
    import time

    for pid in list(_runs):
        release(pid)
    tidy()
    deadline = time.monotonic() + wait
    while _leaving and time.monotonic() < deadline:
        time.sleep(0.01)
        tidy()
    if active is not None:
        _remove_parents(active)


def left_to_rlimits(limits: dict) -> dict:
    """`limits` without those this run's cgroup enforces (their rlimits would only get in the
    way: RLIMIT_AS counts reserved address space, RLIMIT_NPROC a uid's processes)."""
    if current is None:
        return limits
    return {
        k: v
        for k, v in limits.items()
        if not (
            (k == "memory_mb" and "memory" in current.dirs)
            or (k == "max_processes" and "pids" in current.dirs)
        )
    }


def processes_exceeded() -> bool:
    """In a run's process: did its cgroup refuse a fork (EAGAIN from pids.max)?"""
    return current is not None and current.processes_exceeded()
