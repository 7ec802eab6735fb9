import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the shared _ledger helper

from _ledger import record  # noqa: E402

from runs.definitions import task


@task(name="Stuck", timeout_seconds=2)
def run(ctx):
    """Ignores cancellation and outlives its timeout: only a kill ends it."""
    import time

    record(ctx, "start")
    while True:
        record(ctx, "tick")
        time.sleep(0.2)
