import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the shared _ledger helper

from _ledger import record  # noqa: E402

from runs.definitions import task


@task(name="Chatty", input_schema={"type": "object", "properties": {"lines": {"type": "integer"}}})
def run(ctx):
    record(ctx, "start")
    for i in range(ctx.input.get("lines", 200)):
        # Numbered per attempt: the suite checks that no line is stored twice within an attempt.
        print(f"attempt={ctx.attempt} line={i}")
    record(ctx, "end")
    return {"lines": ctx.input.get("lines", 200)}
