import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the shared _ledger helper

from _ledger import busy, record  # noqa: E402

from runs.definitions import task


@task(
    name="Slow",
    input_schema={"type": "object", "properties": {"seconds": {"type": "number"}}},
    backoff_limit=3,
)
def run(ctx):
    record(ctx, "start")
    finished = busy(ctx, ctx.input.get("seconds", 3))
    record(ctx, "end")
    return {"finished": finished}
