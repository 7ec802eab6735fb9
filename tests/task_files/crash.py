import os
import signal

from runs.definitions import task


@task(name="Crash")
def run(ctx):
    print("about to die", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
