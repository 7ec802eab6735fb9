from runs.workflows import workflow


@workflow(
    name="Chain",
    input_schema={"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
)
def build(wf):
    a = wf.task("a", "value", input={"value": {"n": wf.input("x")}})
    b = wf.task("b", "value", input={"value": a.output("n")})
    return {"result": b.output()}
