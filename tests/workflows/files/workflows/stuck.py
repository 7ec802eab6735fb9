from runs.workflows import workflow


@workflow(name="Stuck", timeout_seconds=600)
def build(wf):
    wf.task("hold", "stubborn")
    wf.approval("ask", message="?")
