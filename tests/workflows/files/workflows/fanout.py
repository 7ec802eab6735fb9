from runs.workflows import workflow


@workflow(name="Fan out")
def build(wf):
    items = wf.task("items", "value", input={"value": wf.input("items")})
    doubled = wf.map(
        "each", "value", items=items.output(), input={"value": wf.item()}, concurrency=2
    )
    return {"all": doubled.output()}
