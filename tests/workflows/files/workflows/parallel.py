from runs.workflows import workflow


@workflow(name="Parallel")
def build(wf):
    a = wf.task("a", "value", input={"value": 1})
    b = wf.task("b", "value", input={"value": 2})
    wf.task("c", "value", input={"value": [a.output(), b.output()]})
