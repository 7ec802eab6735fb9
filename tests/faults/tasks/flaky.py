import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the shared _ledger helper

from _ledger import busy, record  # noqa: E402

from runs.definitions import task


@task(name="Flaky", backoff_limit=2)
def run(ctx):
    record(ctx, "start")
    busy(ctx, 0.3)
    record(ctx, "end")
    if ctx.attempt == 1:
        raise RuntimeError("the first attempt always fails")
    return {"attempt": ctx.attempt}
