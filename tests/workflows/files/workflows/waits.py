from runs.workflows import workflow


@workflow(name="Waits")
def build(wf):
    nap = wf.sleep("nap", seconds=1)
    paid = wf.wait_for_event("paid", "payment.received", after=[nap])
    wf.task("receipt", "value", input={"value": paid.output("amount")})
