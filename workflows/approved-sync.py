"""An approval: a person (dashboard) or a client (API) approves before the sync runs."""

from runs.workflows import workflow


@workflow(name="Approved sync", description="Ask an operator before syncing")
def build(wf):
    review = wf.approval("review", message="Sync the external data now?", timeout_seconds=86400)
    sync = wf.task("sync", "sync-data", input={"limit": 5}, after=[review])
    return {"synced": sync.output("synced"), "approved_by": review.output("by")}
