"""Probes a run's cgroup: what it counts together, and what it leaves to the rlimits."""

import mmap
import os
import resource
import time

from runs.definitions import task

MB = 2**20


def touched(size_mb):
    block = bytearray(size_mb * MB)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return block


def reserve():
    """Address space far past memory_mb, little of it used: numpy and JITs do this."""
    reserved = mmap.mmap(-1, 4096 * MB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    kept = touched(50)
    return {"reserved_mb": len(reserved) // MB, "used_mb": len(kept) // MB}


def together():
    """Two processes, each under memory_mb, over it together."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        kept = touched(110)
        os.write(w, b"1")
        time.sleep(60)
        os._exit(len(kept) and 0)
    os.read(r, 1)
    kept = touched(170)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return {"used_mb": len(kept) // MB}


def processes():
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    for _ in range(100):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
    return {"RLIMIT_NPROC": nproc}


def where():
    lines = open("/proc/self/cgroup").read().splitlines()
    return {"cgroup": lines}


@task(name="cgroup limits", limits={"memory_mb": 250, "max_processes": 10})
def run(ctx):
    return globals()[ctx.input["probe"]]()
