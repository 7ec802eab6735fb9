"""An attacker's task: tries to kill the worker, another run, and everything it can."""

import os
import signal

from runs.definitions import task


@task(name="Attack: signals")
def run(ctx):
    results = {}
    for name, pid in ctx.input["targets"].items():
        try:
            os.kill(pid, signal.SIGKILL)
            results[name] = "KILLED"
        except OSError as exc:
            results[name] = f"denied: {type(exc).__name__}"
    signalable = 0
    for pid in range(1, 40000):
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            signalable += 1
        except OSError:
            pass
    results["signalable"] = signalable
    return results
