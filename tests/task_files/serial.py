"""At most one at a time: says when each run starts and ends (in its log: a sandboxed run
cannot write a file of the host)."""

import time

from runs.definitions import task


@task(name="Serial", concurrency_limit=1)
def run(ctx):
    print(f"start {ctx.run_id} {time.time()}", flush=True)
    time.sleep(0.3)
    print(f"end {ctx.run_id} {time.time()}", flush=True)
    return {}
