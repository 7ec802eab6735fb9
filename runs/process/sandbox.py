"""The sandbox a run's process lives in: namespaces, a user of its own, limits. No Django here.

Per run, two processes:

  P1  cloned by the fork server straight into new PID + mount + IPC namespaces [+ network when
      the task asked for none] [+ user, when Studio is not root] (`clone_namespaces`: one
      clone(2), no unshare and no extra fork). It is PID 1 of its namespace: a fresh /proc that
      shows only the run's processes; every mount read-only and nosuid; a private tmpfs on /tmp
      of `disk_mb` (the work directory is /tmp/work, /dev/shm lives in it too); Studio's var/,
      database and queue files hidden; the definitions directories bound back read-only; then
      the run's own user (as root: uid/gid `uid_base + P1's pid on the host`, unique among live
      runs on this host; otherwise the user namespace's unprivileged id), no capabilities,
      no_new_privs, the rlimits (`enter`). It forks the task and reaps orphans until the task
      ends, reports the task's exit code on its status descriptor, and exits the same way: the
      kernel then ends every process left in the namespace, double-forked `setsid` daemons
      included. A kill of P1's process group (SIGKILL to PID 1) ends the whole namespace.
  P2  the task's process: `enter()` returns here, and the caller runs the task.

P1 is made with a raw clone(2) rather than os.fork(), so it skips Python's after-fork work (at-fork
hooks, thread bookkeeping): measured, that and the extra process of an unshare-then-fork design
were a third of a sandboxed run's CPU. That is safe because the cloning process (the fork server,
discovery) has a single thread and P1 runs only this module's code; the task's process is an
ordinary os.fork() of P1, with every after-fork hook (the `random` module's reseed included).
Nothing here imports a task: the caller does that afterwards.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from . import cgroups

CLONE_PARENT = 0x00008000
CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (added after the table merge)
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine)
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
INNER_ID = 1000  # the run's uid/gid inside a user namespace (when Studio is not root)

LIMIT_NAMES = ("memory_mb", "cpu_seconds", "max_processes", "max_file_mb", "disk_mb")
DEFAULT_LIMITS = {
    "memory_mb": 1024,
    "cpu_seconds": 3600,
    "max_processes": 64,
    "max_file_mb": 100,
    "disk_mb": 100,
}
# A run killed by one of these signals hit the limit named (the kernel's way of saying so).
LIMIT_SIGNALS = {signal.SIGXCPU: "cpu_limit", signal.SIGXFSZ: "file_size_limit"}
# Codes and messages for a limit a run exceeded.
LIMIT_CODES = {
    "memory_mb": ("memory_limit", "the run exceeded its memory limit of {} MB"),
    "cpu_seconds": ("cpu_limit", "the run used more than its {} s of CPU time"),
    "max_processes": ("process_limit", "the run tried to have more than {} processes"),
    "max_file_mb": ("file_size_limit", "the run tried to write a file larger than {} MB"),
    "disk_mb": ("disk_limit", "the run filled its {} MB of private disk space (/tmp)"),
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
_libc.mount.argtypes.append(ctypes.c_void_p)
_libc.syscall.restype = ctypes.c_long
# The same libc through the Python API: the call keeps the GIL, so no other thread can run while
# the process is cloned (there is none in the processes that clone; this makes sure).
_pylibc = ctypes.PyDLL(None, use_errno=True)
_pylibc.syscall.restype = ctypes.c_long
SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)


class SandboxError(OSError):
    pass


@dataclass
class Policy:
    """What the worker tells its fork server about sandboxing, once, at start."""

    mode: str = "auto"  # auto | required | off
    hide: list[str] = field(default_factory=list)  # Studio's var/, database and queue files
    definitions: list[str] = field(default_factory=list)  # bound back read-only
    uid_base: int = 1_000_000_000
    limits: dict = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    enabled: bool = False  # set by the fork server once a probe succeeded
    cgroups: bool = True  # a cgroup per run where the machine offers one (runs/process/cgroups.py)
    prepared: int = 1  # sandboxes kept set up ahead of their runs (one per worker thread)
    # Real root (in the host's user namespace): runs get uids of their own. Decided where the
    # policy is made, never later: a non-root fork server is uid 0 of a namespace (netns.py).
    own_uids: bool = field(default_factory=lambda: os.geteuid() == 0)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Policy:
        return cls(**json.loads(text))

    def limits_for(self, overrides: dict | None) -> dict:
        limits = dict(self.limits)
        limits.update({k: v for k, v in (overrides or {}).items() if k in LIMIT_NAMES})
        return limits


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SandboxError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _read_only(path: str) -> None:
    """Make `path` and every mount below it read-only and nosuid, in one syscall."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0)
    _check(
        _libc.syscall(
            SYS_MOUNT_SETATTR,
            ctypes.c_int(AT_FDCWD),
            path.encode(),
            ctypes.c_uint(AT_RECURSIVE),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        ),
        f"mount_setattr {path}",
    )


def _drop_capabilities() -> None:
    """Clear every capability (needed in a user namespace, where a uid change drops none)."""
    if SYS_CAPSET is None:
        raise SandboxError(errno.ENOSYS, "capset: unknown architecture")
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.syscall(SYS_CAPSET, header, data), "capset")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _mkdirs(path: str) -> None:
    os.makedirs(path, exist_ok=True)


_plans: dict[str, tuple[list[str], list[str]]] = {}  # per Policy object of this process


def _plan(policy: Policy) -> tuple[list[str], list[str]]:
    """(covers, binds): directories to cover with an empty tmpfs, and the paths to bind back.

    The definitions directories under /tmp go under the private /tmp; the interpreter, its
    libraries and Studio's code may sit below a directory the run's user cannot enter (Python
    installed under /root, say): that directory gets covered, and only they are bound back, so
    the rest of it (a home directory's keys and dotfiles) stays out of sight. Cached: it only
    depends on the policy and this interpreter."""
    key = f"{id(policy)}:{policy.definitions}"  # cheap: this runs in every child
    if key in _plans:
        return _plans[key]
    needed = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, *sys.path) if p}
    needed.add(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    covers: set[str] = set()
    binds: set[str] = {os.path.realpath(p) for p in policy.definitions if _under(p, "/tmp")}
    for path in sorted(needed):
        if not os.path.exists(path) or _under(path, "/tmp"):
            continue
        blocked = None
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            ancestor = "/" + "/".join(parts[:i])
            try:
                if not os.stat(ancestor).st_mode & 0o001:
                    blocked = ancestor
                    break
            except OSError:
                break
        if blocked is not None:
            covers.add(blocked)
            binds.add(path)
    # A bind inside another bind is already there.
    binds = {b for b in binds if not any(b != o and _under(b, o) for o in binds)}
    _plans[key] = (sorted(covers), sorted(binds))
    return _plans[key]


def _relay(pid: int) -> None:  # pragma: no cover - the process that cloned P1 (discovery)
    """Wait for P1 and exit as it did."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # only SIGKILL of the group ends us early
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(70)
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


_outer_ids: list[int] = []  # (uid, gid) of the process that cloned P1, for P1's id maps


def clone_namespaces(policy: Policy, *, network: bool = True, sibling: bool = False) -> int:
    """fork(2) straight into new namespaces: P1's pid here, 0 in P1 (PID 1 of its namespace).
    With `sibling`, P1 is a child of this process's parent (CLONE_PARENT), not of this process.

    P1 must only run Studio's code, then call `enter()`, which forks the task with os.fork (see
    the module docstring). Raises SandboxError here when the kernel refuses."""
    if SYS_CLONE is None:
        raise SandboxError(errno.ENOSYS, f"clone: unknown architecture {os.uname().machine}")
    if threading.active_count() != 1:  # another thread could hold a lock P1 would then need
        raise SandboxError(errno.EINVAL, "clone_namespaces needs a single-threaded process")
    flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | signal.SIGCHLD
    if not network:
        flags |= CLONE_NEWNET
    if not policy.own_uids:  # a user namespace of its own maps the run to an unprivileged id
        flags |= CLONE_NEWUSER
    if sibling:
        flags |= CLONE_PARENT
    # Read here: in P1, inside a user namespace not mapped yet, getuid() says 65534.
    _outer_ids[:] = [os.getuid(), os.getgid()]
    pid = _pylibc.syscall(SYS_CLONE, ctypes.c_ulong(flags), None, None, None, None)
    if pid < 0:
        err = ctypes.get_errno()
        raise SandboxError(err, f"clone: {os.strerror(err)}")
    return pid


def enter(
    policy: Policy,
    limits: dict,
    *,
    status_fd: int | None = None,
    status_from: Callable[[], int] | None = None,
) -> int:
    """In P1, fresh from `clone_namespaces`: set the sandbox up, fork the task and return in the
    task's process (only), with the run's uid. P1 itself never returns from here.

    Raises SandboxError (in P1, nothing forked yet) when the kernel refuses a step. With
    `status_fd`, P1 writes the task's exit code there as soon as the task ends (the task itself
    never holds that descriptor). With `status_from`, P1 calls it right after forking the task
    (which then waits for its run) to get that descriptor: it blocks until a run comes (a sandbox
    prepared ahead of its run: runs/process/child.py, `prepare_warm`).
    """
    # Die with whoever cloned us (the fork server, which the supervisor's kill does not reach).
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # Before /proc is replaced it is still the host's, where "self" is our pid on the host.
    host_pid = int(os.readlink("/proc/self"))
    root = policy.own_uids
    if root:
        uid = policy.uid_base + host_pid
    else:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{INNER_ID} {_outer_ids[0]} 1")
        _write("/proc/self/gid_map", f"{INNER_ID} {_outer_ids[1]} 1")
        uid = INNER_ID
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    covers, binds = _plan(policy)
    # Keep a handle on what the new mounts below would hide, to bind it back afterwards.
    keep = [(p, os.open(p, os.O_PATH)) for p in binds]
    _read_only("/")
    disk = int(limits.get("disk_mb") or DEFAULT_LIMITS["disk_mb"])
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={disk}m,mode=1777")
    for path in ("/tmp/work", "/tmp/.shm"):
        os.mkdir(path, 0o700 if path == "/tmp/work" else 0o1777)
    if root:
        os.chown("/tmp/work", uid, uid)
    if os.path.isdir("/dev/shm"):
        _mount("/tmp/.shm", "/dev/shm", None, MS_BIND)
    for cover in covers:
        _mount("tmpfs", cover, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,mode=0755")
    for path, fd in keep:
        _mkdirs(path)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        os.close(fd)
    for path in covers:
        _read_only(path)
    for path, _ in keep:
        if _under(path, "/tmp"):
            _read_only(path)
    for path in policy.hide:
        if _under(path, "/tmp") or not os.path.exists(path):
            continue
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k")
        else:
            _mount("/dev/null", path, None, MS_BIND)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    try:
        if root:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)  # root -> an ordinary user: every capability goes
        else:
            _drop_capabilities()
    except (OSError, OverflowError) as exc:
        raise SandboxError(errno.EPERM, f"cannot become the run's user {uid}: {exc}") from None
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    os.chdir("/tmp/work")
    os.environ["HOME"] = os.environ["TMPDIR"] = "/tmp/work"
    # RLIMIT_NPROC counts every process of the real uid: in a user namespace that is Studio's
    # own user outside, so only a run with a uid of its own (Studio as root) can have it.
    apply_limits(limits if root else {k: v for k, v in limits.items() if k != "max_processes"})
    # PID 1 ignores the signals it has no handler for, even SIGKILL from inside: the task runs
    # as PID 2, so that signals reach it as anywhere else, and PID 1 reaps orphans.
    pid = os.fork()
    if pid:
        if status_from is not None:
            status_fd = status_from()
        _init(pid, status_fd)
    if status_fd is not None:
        os.close(status_fd)
    return uid


def isolate(policy: Policy, limits: dict, *, network: bool = True) -> int:
    """Move this whole (single-threaded) process into a sandbox: it stays behind only to wait
    for P1 and exit as it did, and this returns in the sandboxed task process, with its uid.
    Raises SandboxError here if the namespaces cannot be made; a later refusal ends the process
    with code 70 (used by discovery, which reports per file)."""
    pid = clone_namespaces(policy, network=network)
    if pid:
        _relay(pid)
    try:
        return enter(policy, limits)
    except BaseException as exc:  # noqa: BLE001 - in P1: say why, never go on unsandboxed
        try:
            os.write(2, f"studio: the sandbox could not be set up: {exc}\n".encode())
        finally:
            os._exit(70)


def _init(pid: int, status_fd: int | None) -> None:  # pragma: no cover - PID 1 of a run
    """Reap every child; when the task (`pid`) ends, report and end with its status (and so
    end the namespace: the kernel kills whatever is left in it)."""
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(70)
        except InterruptedError:
            continue
        if done == pid:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            if status_fd is not None:
                try:
                    os.write(status_fd, b"%d\n" % code)
                except OSError:
                    pass
            os._exit(code)


def apply_limits(limits: dict) -> None:
    """The rlimits of this process (inherited by everything it starts)."""

    def cap(which: int, soft: int, hard: int | None = None) -> None:
        resource.setrlimit(which, (soft, soft if hard is None else hard))

    limits = cgroups.left_to_rlimits(limits)  # what the run's cgroup enforces needs no rlimit

    if limits.get("memory_mb"):
        cap(resource.RLIMIT_AS, int(limits["memory_mb"]) * 2**20)
    if limits.get("cpu_seconds"):
        seconds = int(limits["cpu_seconds"])
        cap(resource.RLIMIT_CPU, seconds, seconds + 5)  # SIGXCPU first, SIGKILL 5 s later
    if limits.get("max_processes"):
        cap(resource.RLIMIT_NPROC, int(limits["max_processes"]))
    if limits.get("max_file_mb"):
        cap(resource.RLIMIT_FSIZE, int(limits["max_file_mb"]) * 2**20)


def limit_error(name: str, limits: dict) -> dict:
    code, message = LIMIT_CODES[name]
    return {"message": message.format(limits.get(name)), "code": code, "detail": None}


def limit_exceeded(exc: BaseException | None, limits: dict) -> dict | None:
    """The limit an exception (or one it was raised from) says the run hit, as an error dict."""
    seen = 0
    while exc is not None and seen < 20:
        seen += 1
        if isinstance(exc, MemoryError) and limits.get("memory_mb"):
            return limit_error("memory_mb", limits)
        if isinstance(exc, OSError):
            if exc.errno == errno.EFBIG and limits.get("max_file_mb"):
                return limit_error("max_file_mb", limits)
            if exc.errno == errno.ENOSPC and limits.get("disk_mb"):
                return limit_error("disk_mb", limits)
            if exc.errno == errno.EAGAIN and limits.get("max_processes") and _at_process_limit():
                return limit_error("max_processes", limits)
            if exc.errno == errno.ENOMEM and limits.get("memory_mb"):
                return limit_error("memory_mb", limits)
        exc = exc.__cause__ or exc.__context__
    return None


def _at_process_limit() -> bool:
    """EAGAIN from fork means RLIMIT_NPROC (or the system's own limit): tell them apart."""
    if cgroups.processes_exceeded():
        return True
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    try:
        count = sum(1 for name in os.listdir("/proc") if name.isdigit())
    except OSError:
        return True
    return soft != resource.RLIM_INFINITY and count >= soft - 1


def probe(policy: Policy) -> str | None:
    """None if this kernel lets us sandbox a run (tried for real, in a throwaway sandbox), else
    why. Safe to call from a process with threads: the clone happens in a forked child."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the probe child, its P1, then P1's task process
        os.close(r)
        try:
            os.setsid()
            p1 = clone_namespaces(policy)
            if p1:
                _relay(p1)
            enter(policy, dict(policy.limits))
            os.write(w, b"ok")
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001
            try:
                os.write(w, f"{type(exc).__name__}: {exc}".encode()[:500])
            finally:
                os._exit(1)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 4096):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    message = b"".join(chunks).decode(errors="replace")
    return None if message == "ok" else (message or "the probe died")


def guard_loopback(policy: Policy) -> str | None:
    """Keep runs (as root: uids from uid_base on) off the host's loopback services: database,
    Redis, Studio's web server. None when the firewall rule is in place, else why not."""
    import shutil
    import subprocess

    if not policy.own_uids:
        return "Studio does not run as root: owner-based filtering needs root"
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            top = policy.uid_base + int(f.read())
    except OSError:
        top = policy.uid_base + 4194304
    problems = []
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is not installed")
            continue
        rule = ["OUTPUT", "-o", "lo", "-m", "owner", "--uid-owner", f"{policy.uid_base}-{top}"]
        rule += ["-j", "REJECT"]
        try:
            present = subprocess.run([tool, "-w", "-C", *rule], capture_output=True).returncode == 0
            if not present:
                done = subprocess.run([tool, "-w", "-I", *rule], capture_output=True, text=True)
                if done.returncode != 0:
                    problems.append(f"{tool}: {done.stderr.strip()[:200]}")
        except OSError as exc:
            problems.append(f"{tool}: {exc}")
    return "; ".join(problems) or None


def block_django() -> None:
    """Make `import django` (and Studio's own Django modules) fail inside a sandboxed process:
    a task file that needs Studio's settings or database is a broken task file."""
    sys.meta_path.insert(0, _NoDjango())
    for name in list(sys.modules):
        if name == "django" or name.startswith("django."):
            del sys.modules[name]


class _NoDjango:
    BLOCKED = ("django", "studio", "huey")

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".", 1)[0] in self.BLOCKED:
            raise ImportError(
                f"{fullname} cannot be imported by a task: tasks run sandboxed, without "
                "Studio's settings, database or queue"
            )
        return None
