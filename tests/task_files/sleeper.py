import time

from runs.definitions import task


@task(
    name="Sleeper", input_schema={"type": "object", "properties": {"seconds": {"type": "number"}}}
)
def run(ctx):
    print("sleeping", flush=True)
    time.sleep(ctx.input.get("seconds", 1))
    return {"slept": ctx.input.get("seconds", 1)}
