from runs.workflows import workflow


@workflow(name="Parent")
def build(wf):
    sub = wf.workflow("sub", "chain", input={"x": 7})
    return {"sub": sub.output("result")}
