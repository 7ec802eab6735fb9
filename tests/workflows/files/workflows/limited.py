from runs.workflows import workflow


@workflow(
    name="Limited",
    concurrency_limit=1,
    output_schema={"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}},
)
def build(wf):
    a = wf.task("a", "value", input={"value": wf.input("v")})
    return {"a": a.output()}
