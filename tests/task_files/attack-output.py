"""An attacker's task: switches the output_schema check off in its own process, then returns
an output that breaks the schema. The check happens in the worker, so the run still fails."""

from runs.definitions import task
from runs.process import runner

runner.output_error = lambda definition, output: None


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
    return {"count": "many"}
