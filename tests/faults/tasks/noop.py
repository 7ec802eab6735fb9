import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the shared _ledger helper

from _ledger import record  # noqa: E402

from runs.definitions import task


@task(name="No-op", schedulable=True)
def run(ctx):
    record(ctx, "start")
    record(ctx, "end")
    return {"ok": True}
