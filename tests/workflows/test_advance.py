"""advance() in-process: the test stands in for workers by ending child runs itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from runs import service
from runs.models import Run, WorkflowApproval, WorkflowSignal
from runs.orchestration import actions
from runs.orchestration.engine import advance

from .conftest import children, finish, statuses, steps

pytestmark = pytest.mark.django_db


def test_creating_a_workflow_run_stores_graph_and_pending_steps(launch, project):
    run = launch("chain", {"x": 3})
    assert run.kind == "workflow" and run.target == "workflow:chain" and run.workflow_id == "chain"
    assert run.status == "pending"
    assert run.timeout_seconds == 7 * 86400
    assert [s["id"] for s in run.workflow_graph.graph["steps"]] == ["a", "b"]
    assert statuses(run) == {"a": "pending", "b": "pending"}


def test_the_input_is_validated_against_the_input_schema(launch):
    with pytest.raises(service.InvalidInput) as info:
        launch("chain", {"x": "three"})
    assert info.value.errors[0].field == "input.x" or "x" in str(info.value)
    assert not Run.objects.exists()


def test_an_unknown_workflow_or_a_broken_file_is_target_not_found(launch):
    with pytest.raises(service.TargetNotFound, match="no workflow with id 'nope'"):
        launch("nope")
    with pytest.raises(service.TargetNotFound):
        launch("broken")


def test_a_chain_runs_step_after_step_with_resolved_references(launch, project):
    run = launch("chain", {"x": 3})
    advance(run.pk)
    run.refresh_from_db()
    assert run.status == "running"
    assert statuses(run) == {"a": "running", "b": "pending"}
    (a,) = children(run, "a")
    assert a.input == {"value": {"n": 3}} and a.parent_run_id == run.pk and a.root_run_id == run.pk
    assert a.metadata == {"step_id": "a"} and a.trigger_kind == run.trigger_kind
    advance(run.pk)  # idempotent: nothing new starts
    assert len(steps(run)["a"].child_run_ids) == 1
    finish(a, output={"n": 3})
    (b,) = children(run, "b")
    assert b.input == {"value": 3}
    finish(b, output=3)
    run.refresh_from_db()
    assert run.status == "completed"
    assert run.output == {"result": 3}
    types = list(run.events.values_list("event_type", flat=True))
    assert types[:3] == ["run.created", "run.started", "step.started"]
    assert types[-1] == "run.completed"
    assert types.count("step.completed") == 2


def test_steps_without_dependencies_start_together(launch):
    run = launch("parallel")
    advance(run.pk)
    assert statuses(run) == {"a": "running", "b": "running", "c": "pending"}
    finish(children(run, "a")[0], output=1)
    assert statuses(run)["c"] == "pending"
    finish(children(run, "b")[0], output=2)
    (c,) = children(run, "c")
    assert c.input == {"value": [1, 2]}


def test_map_keeps_item_order_and_concurrency(launch):
    run = launch("fanout", {"items": ["a", "b", "c", "d", "e"]})
    advance(run.pk)
    finish(children(run, "items")[0], output=["a", "b", "c", "d", "e"])
    kids = children(run, "each")
    assert [k.input for k in kids] == [{"value": "a"}, {"value": "b"}]  # concurrency 2
    assert [k.metadata["item_index"] for k in kids] == [0, 1]
    finish(kids[1], output="B")
    kids = children(run, "each")
    assert len(kids) == 3
    for kid in kids[2:] + [kids[0]]:
        finish(kid, output=kid.input["value"].upper())
    while len(kids := children(run, "each")) < 5 or any(k.status != "completed" for k in kids):
        for kid in kids:
            if kid.status == "pending":
                finish(kid, output=kid.input["value"].upper())
    run.refresh_from_db()
    assert run.status == "completed"
    assert run.output == {"all": ["A", "B", "C", "D", "E"]}


def test_map_fails_clearly_past_the_item_cap(launch, settings):
    settings.STUDIO_WORKFLOW_MAX_ITEMS = 3
    run = launch("fanout", {"items": [1, 2, 3, 4]})
    advance(run.pk)
    finish(children(run, "items")[0], output=[1, 2, 3, 4])
    step = steps(run)["each"]
    assert step.status == "failed"
    assert (
        step.error["message"]
        == "step 'each': 4 items is more than the cap of 3 (STUDIO_WORKFLOW_MAX_ITEMS)"
    )
    assert step.child_run_ids == []
    run.refresh_from_db()
    assert run.status == "failed" and run.error["code"] == "step_failed"


def test_trigger_rules_and_skip_propagation(launch):
    run = launch("rules")
    advance(run.pk)
    finish(children(run, "ok")[0], output=1)
    finish(children(run, "bad")[0], status="failed")
    assert statuses(run) == {
        "ok": "completed",
        "bad": "failed",
        "all_success": "skipped",
        "all_done": "running",
        "none_failed": "skipped",
        "one_failed": "running",
        "after_skip": "skipped",
        "none_failed_skip": "running",
    }
    for step_id in ("all_done", "one_failed", "none_failed_skip"):
        finish(children(run, step_id)[0], output=step_id)
    run.refresh_from_db()
    # every failed step had continue_on_failure
    assert run.status == "completed"
    assert run.output["all_done"] == "all_done" and "bad" not in run.output


@pytest.mark.parametrize("big, runs, skipped", [(True, "big", "small"), (False, "small", "big")])
def test_when_and_unless_branch_on_a_tasks_boolean(launch, big, runs, skipped):
    run = launch("branch", {"big": big})
    advance(run.pk)
    finish(children(run, "check")[0], output={"big": big})
    assert statuses(run)[runs] == "running"
    assert statuses(run)[skipped] == "skipped"


def test_a_failed_step_fails_the_workflow_and_skips_what_depended_on_it(launch):
    run = launch("chain", {"x": 1})
    advance(run.pk)
    finish(children(run, "a")[0], status="failed")
    run.refresh_from_db()
    assert statuses(run) == {"a": "failed", "b": "skipped"}
    assert run.status == "failed"
    assert run.error["message"] == "step 'a' failed: it broke"
    assert run.error["code"] == "step_failed"


def test_a_reference_to_nothing_fails_the_step_naming_step_and_path(launch):
    run = launch("chain", {"x": 1})
    advance(run.pk)
    finish(children(run, "a")[0], output={"not_n": 1})
    step = steps(run)["b"]
    assert step.status == "failed"
    assert step.error["message"].startswith("step 'b': a.output.n resolved to nothing")


def test_approval_approve_reject_and_expiry(launch):
    run = launch("gate")
    advance(run.pk)
    run.refresh_from_db()
    assert run.status == "waiting" and run.waiting_reason == "approval"
    approval = WorkflowApproval.objects.get(run=run)
    assert approval.status == "pending" and approval.message == "Ship it?"
    actions.decide_approval(run, "review", approved=True, comment="go", by="alice")
    with pytest.raises(actions.AlreadyDecided):
        actions.decide_approval(run, "review", approved=False, comment="", by="bob")
    advance(run.pk)
    run.refresh_from_db()
    assert run.status == "running"
    (ship,) = children(run, "ship")
    assert ship.input == {"value": "go"}
    out = steps(run)["review"].output
    assert out["approved"] is True and out["by"] == "alice" and out["comment"] == "go"

    rejected = launch("gate")
    advance(rejected.pk)
    actions.decide_approval(rejected, "review", approved=False, comment="no", by="bob")
    advance(rejected.pk)
    rejected.refresh_from_db()
    assert rejected.status == "failed"
    assert steps(rejected)["review"].error["code"] == "approval_rejected"

    expired = launch("gate")
    advance(expired.pk)
    WorkflowApproval.objects.filter(run=expired).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    advance(expired.pk)
    expired.refresh_from_db()
    assert expired.status == "failed"
    assert WorkflowApproval.objects.get(run=expired).status == "expired"
    assert steps(expired)["review"].error["code"] == "approval_expired"


def test_sleep_then_an_event_that_arrived_early(launch):
    run = launch("waits")
    advance(run.pk)
    run.refresh_from_db()
    assert run.status == "waiting" and run.waiting_reason == "sleep" and run.resume_at
    actions.send_signal(run, "payment.received", {"amount": 5})
    actions.send_signal(run, "payment.received", {"amount": 6})
    advance(run.pk)
    assert steps(run)["nap"].status == "waiting"  # not due yet
    run.steps.filter(step_id="nap").update(resume_at=timezone.now() - timedelta(seconds=1))
    advance(run.pk)
    assert steps(run)["paid"].output == {"amount": 5}
    (receipt,) = children(run, "receipt")
    assert receipt.input == {"value": 5}
    assert WorkflowSignal.objects.filter(run=run, consumed_at__isnull=True).count() == 1


def test_waiting_reason_prefers_approval_over_event_over_sleep(project, settings, tmp_path):
    (tmp_path / "w.py").write_text(
        "from runs.workflows import workflow\n"
        "@workflow\n"
        "def build(wf):\n"
        "    wf.sleep('s', seconds=100)\n"
        "    wf.wait_for_event('e', 'x')\n"
        "    wf.approval('a', message='ok?')\n"
    )
    settings.STUDIO_WORKFLOWS_DIR = tmp_path
    run = service.create_run(project, target="workflow:w").run
    advance(run.pk)
    run.refresh_from_db()
    assert run.waiting_reason == "approval"
    actions.decide_approval(run, "a", approved=True, comment="", by="x")
    advance(run.pk)
    run.refresh_from_db()
    assert run.status == "waiting" and run.waiting_reason == "event"


def test_sub_workflow_child_and_depth_cap(launch, settings):
    run = launch("parent")
    advance(run.pk)
    (sub,) = children(run, "sub")
    assert sub.kind == "workflow" and sub.parent_run_id == run.pk and sub.root_run_id == run.pk
    assert sub.input == {"x": 7}
    advance(sub.pk)
    (a,) = children(sub, "a")
    assert a.root_run_id == run.pk
    finish(a, output={"n": 7})
    finish(children(sub, "b")[0], output=7)
    sub.refresh_from_db()
    assert sub.status == "completed"
    advance(run.pk)
    run.refresh_from_db()
    assert run.output == {"sub": 7}

    settings.STUDIO_WORKFLOW_MAX_DEPTH = 1
    capped = launch("parent")
    advance(capped.pk)
    assert steps(capped)["sub"].error["code"] == "workflow_depth"


def test_cancel_cascades_to_children_and_open_approvals(launch):
    run = launch("stuck")
    advance(run.pk)
    (hold,) = children(run, "hold")
    assert hold.status == "pending"
    service.cancel_run(run)
    advance(run.pk)
    run.refresh_from_db()
    hold.refresh_from_db()
    assert hold.status == "cancelled"
    assert statuses(run) == {"hold": "cancelled", "ask": "cancelled"}
    assert WorkflowApproval.objects.get(run=run).status == "expired"
    assert run.status == "cancelled"


def test_workflow_timeout_fails_with_code_timeout(launch):
    run = launch("stuck")
    advance(run.pk)
    Run.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(seconds=601))
    advance(run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and run.error["code"] == "timeout"
    assert children(run, "hold")[0].status == "cancelled"


def test_rerun_from_failed_reuses_completed_steps(launch):
    run = launch("chain", {"x": 2})
    advance(run.pk)
    a = children(run, "a")[0]
    finish(a, output={"n": 2})
    finish(children(run, "b")[0], status="failed")
    run.refresh_from_db()
    again = actions.rerun_workflow(run, from_failed=True).run
    advance(again.pk)
    s = steps(again)
    assert s["a"].status == "completed" and s["a"].output == {"n": 2}
    assert s["a"].reused_from_run_id == run.pk and s["a"].child_run_ids == [a.pk]
    assert s["b"].status == "running" and s["b"].reused_from_run_id is None
    plain = actions.rerun_workflow(run, from_failed=False).run
    advance(plain.pk)
    assert steps(plain)["a"].status == "running"


def test_concurrency_limit_keeps_later_runs_pending(launch):
    first, second = launch("limited", {"v": 1}), launch("limited", {"v": 2})
    advance(second.pk)  # not its turn: the older one is still pending
    advance(first.pk)
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, second.status) == ("running", "pending")
    advance(second.pk)
    second.refresh_from_db()
    assert second.status == "pending"
    finish(children(first, "a")[0], output=1)
    first.refresh_from_db()
    assert first.status == "completed" and first.output == {"a": 1}
    advance(second.pk)
    second.refresh_from_db()
    assert second.status == "running"


def test_an_output_that_does_not_match_the_output_schema_fails(launch):
    run = launch("limited", {"v": "x"})
    advance(run.pk)
    finish(children(run, "a")[0], output="not an integer")
    run.refresh_from_db()
    assert run.status == "failed" and run.error["code"] == "output_invalid"


def test_the_sweeper_finds_workflows_that_did_not_advance(launch, monkeypatch, settings):
    from runs.orchestration import sweeper

    sent: list[str] = []
    monkeypatch.setattr(sweeper, "enqueue_advance", sent.append)
    settings.STUDIO_REQUEUE_AFTER_SECONDS = 1
    old = timezone.now() - timedelta(seconds=5)
    never = launch("chain", {"x": 1})
    Run.objects.filter(pk=never.pk).update(enqueued_at=old)
    stalled = launch("chain", {"x": 1})
    advance(stalled.pk)
    finish_without_advance = children(stalled, "a")[0]
    Run.objects.filter(pk=finish_without_advance.pk).update(status="completed", output={"n": 1})
    Run.objects.filter(pk=stalled.pk).update(updated_at=old)
    busy = launch("chain", {"x": 1})
    advance(busy.pk)
    Run.objects.filter(pk=busy.pk).update(updated_at=old)  # its child is still pending: fine
    due = launch("gate")
    advance(due.pk)
    Run.objects.filter(pk=due.pk).update(resume_at=timezone.now() - timedelta(seconds=1))
    assert sweeper.sweep_workflows() == 3
    assert set(sent) == {never.pk, stalled.pk, due.pk}


def test_cancel_cascades_through_a_sub_workflow(launch):
    run = launch("parent")
    advance(run.pk)
    (sub,) = children(run, "sub")
    advance(sub.pk)
    (a,) = children(sub, "a")
    service.cancel_run(run)
    advance(run.pk)  # asks the sub-workflow to stop
    sub.refresh_from_db()
    assert sub.cancel_requested_at is not None
    advance(sub.pk)  # the sub-workflow stops its own child and ends
    a.refresh_from_db(), sub.refresh_from_db()
    assert (a.status, sub.status) == ("cancelled", "cancelled")
    advance(run.pk)
    run.refresh_from_db()
    assert run.status == "cancelled" and statuses(run) == {"sub": "cancelled"}
