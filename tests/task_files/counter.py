"""Appends one line per execution to a file: counts how often a run really executed."""

import os
import time

from runs.definitions import task


@task(name="Counter", input_schema={"type": "object", "properties": {"path": {"type": "string"}}})
def run(ctx):
    with open(ctx.input["path"], "a") as f:
        f.write(f"{ctx.run_id} {ctx.attempt} {os.getpid()}\n")
    time.sleep(0.05)
    return {"ok": True}
