"""At most one at a time: records when each run starts and ends."""

import time

from runs.definitions import task


@task(
    name="Serial",
    concurrency_limit=1,
    input_schema={"type": "object", "properties": {"path": {"type": "string"}}},
)
def run(ctx):
    with open(ctx.input["path"], "a") as f:
        f.write(f"start {ctx.run_id} {time.time()}\n")
    time.sleep(0.3)
    with open(ctx.input["path"], "a") as f:
        f.write(f"end {ctx.run_id} {time.time()}\n")
    return {}
