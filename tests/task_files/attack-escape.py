"""An attacker's task: leaves a double-forked, setsid daemon behind, then runs on."""

import os
import time

from runs.definitions import task


@task(name="Attack: escape")
def run(ctx):
    tag = f"700.{int(ctx.run_id[-6:], 16) if ctx.run_id else 0}"
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", tag])
        os._exit(0)
    print(f"daemon started as sleep {tag}", flush=True)
    while True:
        time.sleep(0.1)
