"""A long task: reports progress each step and stops cleanly when cancelled."""

import time

from runs.definitions import task


@task(
    name="Long-running import",
    description="Processes items one by one, reporting progress; honours cancellation",
    input_schema={
        "type": "object",
        "properties": {
            "steps": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 30},
            "delay_seconds": {"type": "number", "minimum": 0, "maximum": 60, "default": 1},
        },
    },
    timeout_seconds=3600,
)
def run(ctx):
    steps = ctx.input["steps"]
    for step in range(1, steps + 1):
        if ctx.cancelled:
            print(f"cancellation requested: stopping after {step - 1} of {steps} steps")
            return {"processed": step - 1, "stopped_early": True}
        print(f"processing item {step}")
        ctx.progress(step, steps, message=f"item {step} of {steps}")
        time.sleep(ctx.input["delay_seconds"])
    return {"processed": steps, "stopped_early": False}
