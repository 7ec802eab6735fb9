"""Ignores cancellation and spawns a child process of its own."""

import os
import subprocess
import time

from runs.definitions import task


@task(name="Stubborn")
def run(ctx):
    # A run-specific argument, so a test can find this process from outside the run's PID
    # namespace, where the pids printed here mean nothing.
    tag = f"600.{int(ctx.run_id[-6:], 16) if ctx.run_id else 0}"
    child = subprocess.Popen(["sleep", tag])
    print(f"spawned {child.pid} from {os.getpid()} as sleep {tag}", flush=True)
    while True:
        time.sleep(0.1)
