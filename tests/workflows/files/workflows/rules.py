from runs.workflows import workflow


@workflow(name="Trigger rules")
def build(wf):
    ok = wf.task("ok", "value", input={"value": 1})
    bad = wf.task("bad", "value", input={"fail": "boom"}, continue_on_failure=True)
    wf.task("all_success", "value", after=[ok, bad])
    wf.task("after_skip", "value", after=["all_success"])
    wf.task("all_done", "value", after=[ok, bad], trigger_rule="all_done")
    wf.task("none_failed", "value", after=[ok, bad], trigger_rule="none_failed")
    wf.task("one_failed", "value", after=[ok, bad], trigger_rule="one_failed")
    wf.task("none_failed_skip", "value", after=["after_skip", ok], trigger_rule="none_failed")
