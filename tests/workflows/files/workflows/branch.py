from runs.workflows import workflow


@workflow(name="Branch")
def build(wf):
    check = wf.task("check", "value", input={"value": {"big": wf.input("big")}})
    wf.task("big", "value", input={"value": "big"}, when=check.output("big"))
    wf.task("small", "value", input={"value": "small"}, unless=check.output("big"))
