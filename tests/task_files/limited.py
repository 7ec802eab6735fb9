"""Exceeds the limit named by its input."""

import os
import time

from runs.definitions import task


def memory():
    return len(bytearray(600 * 2**20))


def cpu():
    while True:
        pass


def processes():
    children = []
    for _ in range(50):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
    return len(children)


def file_size():
    with open("big", "wb") as f:
        for _ in range(20):
            f.write(b"x" * 2**20)


def disk():
    for i in range(20):
        with open(f"/tmp/part{i}", "wb") as f:
            f.write(b"x" * 2**20 * 3)


# cpu_seconds leaves the memory case room: filling 400 MB costs a few tenths of a second of CPU
# (page faults, the cgroup reclaiming before it kills), more on a busy VM, whose stolen time is
# billed to the process; with 1 s, RLIMIT_CPU sometimes struck first.
@task(
    name="Limited",
    limits={
        "memory_mb": 400,
        "cpu_seconds": 2,
        "max_processes": 8,
        "max_file_mb": 5,
        "disk_mb": 16,
    },
)
def run(ctx):
    return globals()[ctx.input["exceed"]]()
