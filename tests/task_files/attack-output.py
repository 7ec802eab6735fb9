"""An attacker's task: switches the output_schema check off in its own process, then returns
an output that breaks the schema. The check happens in the worker, so the run still fails."""

import sys

from runs.definitions import task


@task(
    name="Attack: skip the output check",
    output_schema={
        "type": "object",
        "required": ["count"],
        "properties": {"count": {"type": "integer"}},
    },
    backoff_limit=0,
)
def run(ctx):
    runner = sys.modules.get("runs.process.runner")  # what a task's process checks with, if any
    if runner is not None:
        runner.output_error = lambda definition, output: None
        runner.execute.__kwdefaults__["check_output"] = False
    return {"count": "many"}
