import time

from runs.definitions import task


@task(name="Slow")
def run(ctx):
    time.sleep(ctx.input.get("seconds", 1))
    return {"slept": ctx.input.get("seconds", 1), "value": ctx.input.get("value")}
