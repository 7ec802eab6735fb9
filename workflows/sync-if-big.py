"""A branch on a task's boolean: a full sync when the report is big, a small one otherwise."""

from runs.workflows import workflow


@workflow(
    name="Sync if big",
    description="Branch on a task's boolean output with when= / unless=",
    input_schema={
        "type": "object",
        "properties": {"threshold": {"type": "integer", "default": 100}},
    },
)
def build(wf):
    regions = wf.task("regions", "steps-list-regions")
    counts = wf.map(
        "count", "steps-count-region", items=regions.output("regions"), input={"region": wf.item()}
    )
    check = wf.task(
        "check",
        "steps-sum-counts",
        input={"counts": counts.output(), "threshold": wf.input("threshold")},
    )
    wf.task("full-sync", "sync-data", input={"limit": 100}, when=check.output("big"))
    wf.task("small-sync", "sync-data", input={"limit": 1}, unless=check.output("big"))
