"""Says once per execution that it executed: counts how often a run really executed.

(It cannot count in a file of the host: a sandboxed run writes only to its own /tmp.)"""

import os
import time

from runs.definitions import task


@task(name="Counter")
def run(ctx):
    print(f"executed {ctx.run_id} {ctx.attempt} {os.getpid()}", flush=True)
    time.sleep(0.05)
    return {"ok": True}
