from runs.workflows import workflow


@workflow(name="Retry")
def build(wf):
    wf.task("flaky", "value", input={"succeed_on": 2, "value": "ok"}, retries=2)
