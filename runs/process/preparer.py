"""The preparer: a process of the fork server's that sets sandboxes up ahead of their runs.

Cloning a prepared sandbox's P1 costs the cloning process a millisecond or more (its page
tables are copied, the namespaces made): done by the fork server, that time was taken from
whichever request arrived meanwhile. The preparer is a fork of the fork server, made once at
start, that does nothing else: asked for a sandbox, it clones P1 with CLONE_PARENT (so that P1
is the fork server's child all the same: the fork server reaps it, kills it, and P1 dies with
it) and hands P1's two sockets back. As root it runs at idle priority, and so does the P1 it
clones until the fork server hands it a run (child.promote): preparing never takes CPU a run
wants. No Django here.

Protocol, one SOCK_SEQPACKET pair (one message each way per sandbox):
  fork server -> preparer   {"id": n, "cgroup": {version, dirs, limits} or null}
  preparer -> fork server   {"id": n, "pid": P1} carrying [P1's socket, the task's socket],
                            or {"id": n, "error": "..."}
"""

from __future__ import annotations

import json
import os
import signal
import socket
from dataclasses import dataclass, field

from . import cgroups, sandbox
from .child import Warm, die_with_parent, prepare_warm


@dataclass
class Preparer:
    """The fork server's handle on its preparer."""

    pid: int
    sock: socket.socket
    asked: dict[int, cgroups.RunCgroup | None] = field(default_factory=dict)  # id -> cgroup
    serial: int = 0

    def ask(self, cgroup: cgroups.RunCgroup | None) -> None:
        """Ask for one more sandbox (raises OSError if the preparer is gone)."""
        self.serial += 1
        described = None
        if cgroup is not None:
            described = {"version": cgroup.version, "dirs": cgroup.dirs, "limits": cgroup.limits}
        self.sock.send(json.dumps({"id": self.serial, "cgroup": described}).encode())
        self.asked[self.serial] = cgroup

    def receive(self) -> tuple[Warm | None, cgroups.RunCgroup | None]:
        """One sandbox the preparer finished, with its cgroup; (None, cgroup) when it failed."""
        message, fds, _, _ = socket.recv_fds(self.sock, 65536, 2)
        if not message:
            raise ConnectionError("the preparer is gone")
        reply = json.loads(message)
        cgroup = self.asked.pop(reply["id"], None)
        if "error" in reply or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return None, cgroup
        return Warm(
            reply["pid"], socket.socket(fileno=fds[0]), socket.socket(fileno=fds[1])
        ), cgroup


def start(policy: sandbox.Policy) -> Preparer:
    """Fork the preparer (from the fork server, single-threaded, before it serves anything)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the preparer
        status = 70
        try:
            ours.close()
            status = _serve(policy, theirs)
        finally:
            os._exit(status)
    theirs.close()
    return Preparer(pid, ours)


def _serve(policy: sandbox.Policy, sock: socket.socket) -> int:  # pragma: no cover
    for signum in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)  # not the fork server's handlers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.set_wakeup_fd(-1)
    die_with_parent()
    if policy.own_uids:  # the fork server can lift the priority of what we clone again
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    while True:
        try:
            message = sock.recv(65536)
        except InterruptedError:
            continue
        if not message:
            return 0  # the fork server is gone
        request = json.loads(message)
        described = request["cgroup"]
        cgroup = cgroups.RunCgroup(**described) if described is not None else None
        try:
            if cgroup is not None and not policy.own_uids:
                cgroup.make()  # as root, P1 makes it (cgroups.RunCgroup.enter)
            warm = prepare_warm(policy, cgroup, sibling=True)
        except OSError as exc:
            sock.send(json.dumps({"id": request["id"], "error": str(exc)}).encode())
            continue
        try:
            socket.send_fds(
                sock,
                [json.dumps({"id": request["id"], "pid": warm.pid}).encode()],
                [warm.sock.fileno(), warm.task_sock.fileno()],
            )
        except OSError:
            os.kill(warm.pid, signal.SIGKILL)  # nobody would ever use it
        finally:
            warm.close()
