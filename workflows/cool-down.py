"""A durable sleep: the run waits (holding no worker) and survives worker restarts."""

from runs.workflows import workflow


@workflow(name="Cool down", description="Sync, wait five seconds, sync again")
def build(wf):
    first = wf.task("first", "sync-data", input={"limit": 1})
    wf.sleep("pause", seconds=5, after=[first])
    wf.task("second", "sync-data", input={"limit": 2}, after=["pause"])
