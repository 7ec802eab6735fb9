"""The fault suite's workflow: a fan-out of no-op tasks, then one more step after them."""

from runs.workflows import workflow


@workflow(name="Fan out and in")
def build(wf):
    each = wf.map("each", "noop", items=[1, 2, 3])
    wf.task("after", "noop", after=[each])
