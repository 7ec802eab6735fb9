"""User-mode networking for runs when Studio is not root. No Django here.

As root, an iptables owner rule keeps the runs' uids off the host's loopback
(sandbox.guard_loopback). A non-root Studio has no such tool, so the fork server, once at
start, moves itself into a user + network namespace of its own and has `slirp4netns` attach
user-mode networking to it from outside, with `--disable-host-loopback`. Every run it forks
then shares that network namespace: its loopback (127.0.0.1, ::1) is the namespace's own, not
the host's, where Studio's database, Redis and web server listen; the outside world is reached
through slirp4netns (10.0.2.2 is the gateway, 10.0.2.3 forwards DNS). The host's own other
addresses (say eth0's) would still reach services listening on 0.0.0.0 through slirp4netns,
so they get a `prohibit` route inside the namespace. Nothing of this happens per run: a run
with `network=False` still unshares an empty network namespace of its own.

Inside that user namespace the fork server is uid 0 of the namespace (mapped to Studio's user
outside, no privilege on the host): sandbox.Policy.own_uids, decided before, says whether runs
get uids of their own (real root), never os.geteuid() afterwards.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
TOOL = "slirp4netns"
READY_TIMEOUT = 10.0

_libc = ctypes.CDLL(None, use_errno=True)

helper_pid: int | None = None  # slirp4netns, a child of the fork server
_exit_w: int | None = None  # slirp4netns exits when this (kept open here) closes


def host_addresses() -> list[str]:
    """The host's own IPv4 addresses other than the loopback range (from /proc/net/fib_trie)."""
    found: list[str] = []
    last = None
    try:
        with open("/proc/net/fib_trie") as f:
            for line in f:
                text = line.strip()
                if text.startswith("|--"):
                    last = text[3:].strip()
                elif text == "/32 host LOCAL" and last and not last.startswith("127."):
                    if last not in found:
                        found.append(last)
    except OSError:
        pass
    return found


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def isolate_network() -> tuple[str | None, str]:
    """Enter a user + network namespace of our own with slirp4netns attached.

    Returns (None, what was done) or (why not, ""). When the namespaces could not be entered
    nothing changed; when slirp4netns failed after that, this process is left in a network
    namespace with no way out (the reason says "NO network"): it fails closed. Call it once, in
    a single-threaded process that is not root (the fork server, at start)."""
    global helper_pid, _exit_w
    tool = shutil.which(TOOL)
    if tool is None:
        return f"{TOOL} is not installed (Debian: apt-get install {TOOL}; make sandbox-deps)", ""
    own = host_addresses()  # read while still in the host's network namespace
    uid, gid = os.getuid(), os.getgid()
    parent = os.getpid()
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    exit_r, exit_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - becomes slirp4netns, in the host's namespaces
        try:
            os.close(go_w)
            os.close(ready_r)
            os.close(exit_w)
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            os.setpgid(0, 0)  # out of the fork server's group: its signals are not for us
            if os.read(go_r, 1) != b"1":
                os._exit(0)
            for fd in (ready_w, exit_r):
                os.set_inheritable(fd, True)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)  # it chats about tap fds on stdout; errors stay on stderr
            args = [tool, "--configure", "--mtu=65520", "--disable-host-loopback"]
            args += ["--enable-sandbox", "--enable-seccomp"]
            args += [f"--ready-fd={ready_w}", f"--exit-fd={exit_r}", str(parent), "tap0"]
            os.execv(tool, args)
        finally:
            os._exit(127)
    os.close(go_r)
    os.close(ready_w)
    os.close(exit_r)

    def give_up(why: str) -> tuple[str, str]:
        global helper_pid, _exit_w
        for fd in (go_w, ready_r, exit_w):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
        helper_pid = _exit_w = None
        return why, ""

    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        return give_up(f"unshare(user, network): {os.strerror(err)}")
    try:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    except OSError as exc:
        return give_up(f"cannot map our user in the new namespace (runs have NO network): {exc}")
    os.write(go_w, b"1")
    os.close(go_w)
    ready = select.select([ready_r], [], [], READY_TIMEOUT)[0]
    answer = os.read(ready_r, 16) if ready else b""
    os.close(ready_r)
    if answer != b"1":
        return give_up(
            f"{TOOL} did not come up within {READY_TIMEOUT:g} s (see its error above); runs have "
            "NO network"
        )
    helper_pid, _exit_w = pid, exit_w
    blocked = []
    for address in own:
        done = (
            subprocess.run(
                ["ip", "route", "add", "prohibit", f"{address}/32"], capture_output=True, text=True
            )
            if shutil.which("ip")
            else None
        )
        if done is not None and done.returncode == 0:
            blocked.append(address)
    missing = [a for a in own if a not in blocked]
    note = f"runs reach the outside through {TOOL}, not the host's loopback"
    if blocked:
        note += f" nor the host's own addresses ({', '.join(blocked)})"
    if missing:
        note += f"; WARNING: could not block the host's addresses {', '.join(missing)} (iproute2)"
    return None, note


def lost(pid: int) -> bool:
    """True if `pid`, a child the fork server reaped, was slirp4netns: say runs are offline."""
    global helper_pid
    if helper_pid is None or pid != helper_pid:
        return False
    helper_pid = None
    print(
        f"studio: WARNING: {TOOL} exited: runs have no network beyond their own loopback until "
        "the worker restarts",
        file=sys.stderr,
        flush=True,
    )
    return True
