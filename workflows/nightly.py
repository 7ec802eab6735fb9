"""A sub-workflow: the regional report runs as a child workflow run of this one."""

from runs.workflows import workflow


@workflow(name="Nightly", description="The regional report as a sub-workflow, then a sync")
def build(wf):
    report = wf.workflow("report", "regional-report", input={"regions": ["emea", "apac"]})
    wf.task("sync", "sync-data", input={"limit": 3}, after=[report])
    return {"orders": report.output("total")}
