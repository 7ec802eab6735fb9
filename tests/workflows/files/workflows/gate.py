from runs.workflows import workflow


@workflow(name="Gate")
def build(wf):
    review = wf.approval("review", message="Ship it?", timeout_seconds=3600)
    done = wf.task("ship", "value", input={"value": review.output("comment")})
    return {"shipped": done.output()}
