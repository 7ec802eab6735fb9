from runs.workflows import workflow


@workflow(name="Broken")
def build(wf):
    wf.task("a", "no-such-task")
