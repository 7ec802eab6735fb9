"""Ignores cancellation and spawns a child process of its own."""

import os
import subprocess
import time

from runs.definitions import task


@task(name="Stubborn")
def run(ctx):
    child = subprocess.Popen(["sleep", "600"])
    print(f"spawned {child.pid} from {os.getpid()}", flush=True)
    while True:
        time.sleep(0.1)
