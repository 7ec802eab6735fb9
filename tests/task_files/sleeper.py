import os
import time

from runs.definitions import task


@task(
    name="Sleeper", input_schema={"type": "object", "properties": {"seconds": {"type": "number"}}}
)
def run(ctx):
    print(f"sleeping in {os.getpid()}", flush=True)
    time.sleep(ctx.input.get("seconds", 1))
    return {"slept": ctx.input.get("seconds", 1)}
