"""The dashboard's workflow pages, for every persona."""

from __future__ import annotations

import pytest

from runs.models import Run, WorkflowApproval
from runs.orchestration.engine import advance

from .conftest import children, finish, statuses

pytestmark = pytest.mark.django_db


@pytest.fixture
def gate(launch) -> Run:
    run = launch("gate")
    advance(run.pk)
    return run


def urls(run: Run) -> dict:
    base = "/p/acme"
    return {
        "workflows": f"{base}/workflows/",
        "workflow": f"{base}/workflows/chain/",
        "run": f"{base}/runs/{run.pk}/",
        "steps": f"{base}/runs/{run.pk}/steps/",
    }


POSTS = {
    "launch": ("/p/acme/workflows/chain/", {"input.x": "3"}),
    "decide": ("/p/acme/runs/{run}/approvals/review/", {"decision": "approve"}),
    "rerun": ("/p/acme/runs/{run}/rerun/", {}),
}


@pytest.mark.parametrize("page", ["workflows", "workflow", "run", "steps"])
def test_pages_for_each_persona(client, login, viewer, outsider, gate, page):
    url = urls(gate)[page]
    assert client.get(url).status_code == 302  # anonymous: to the login page
    assert login(outsider).get(url).status_code == 404
    assert login(viewer).get(url).status_code == 200


@pytest.mark.parametrize("action", POSTS)
def test_writes_need_an_operator(client, login, viewer, outsider, gate, action):
    path, data = POSTS[action]
    url = path.format(run=gate.pk)
    before = Run.objects.count()
    assert client.post(url, data).status_code == 302
    assert login(outsider).post(url, data).status_code == 404
    assert login(viewer).post(url, data).status_code == 403
    assert Run.objects.count() == before
    assert WorkflowApproval.objects.get(run=gate).status == "pending"


def test_workflows_page_lists_workflows_and_discovery_errors(login, viewer):
    html = login(viewer).get("/p/acme/workflows/").content.decode()
    assert "Chain" in html and "Fan out" in html
    assert "broken.py" in html and "no task with id &#x27;no-such-task&#x27;" in html


def test_workflow_page_draws_the_graph_and_launches_from_the_input_schema(login, operator):
    client = login(operator)
    html = client.get("/p/acme/workflows/chain/").content.decode()
    assert "<svg" in html and 'data-step="a"' in html and 'data-from="a" data-to="b"' in html
    assert 'name="input.x"' in html
    bad = client.post("/p/acme/workflows/chain/", {"input.x": "three"})
    assert bad.status_code == 422 and 'value="three"' in bad.content.decode()
    assert not Run.objects.exists()
    response = client.post("/p/acme/workflows/chain/", {"input.x": "3"})
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/p/acme/runs/{run.pk}/"
    assert run.kind == "workflow" and run.input == {"x": 3} and run.created_by == "oscar"


def test_run_page_shows_steps_and_an_operator_approves(login, operator, gate):
    client = login(operator)
    html = client.get(f"/p/acme/runs/{gate.pk}/").content.decode()
    assert 'data-step="review" data-status="waiting"' in html
    assert "Ship it?" in html and 'value="approve"' in html
    response = client.post(
        f"/p/acme/runs/{gate.pk}/approvals/review/", {"decision": "approve", "comment": "go"}
    )
    assert response.status_code == 302
    approval = WorkflowApproval.objects.get(run=gate)
    assert (
        approval.status == "approved"
        and approval.decided_by == "oscar"
        and approval.comment == "go"
    )
    again = client.post(f"/p/acme/runs/{gate.pk}/approvals/review/", {"decision": "reject"})
    assert again.status_code == 302
    assert WorkflowApproval.objects.get(run=gate).status == "approved"
    advance(gate.pk)
    panel = client.get(f"/p/acme/runs/{gate.pk}/steps/").content.decode()
    assert 'data-step="review" data-status="completed"' in panel
    (ship,) = children(gate, "ship")
    assert f"/p/acme/runs/{ship.pk}/" in panel


def test_a_viewer_sees_no_decision_buttons(login, viewer, gate):
    html = login(viewer).get(f"/p/acme/runs/{gate.pk}/").content.decode()
    assert "Ship it?" in html and 'value="approve"' not in html


def test_rerun_from_failed_from_the_run_page(login, operator, launch):
    run = launch("chain", {"x": 1})
    advance(run.pk)
    finish(children(run, "a")[0], output={"n": 1})
    finish(children(run, "b")[0], status="failed")
    client = login(operator)
    assert "Re-run from failed" in client.get(f"/p/acme/runs/{run.pk}/").content.decode()
    response = client.post(f"/p/acme/runs/{run.pk}/rerun/", {"from": "failed"})
    again = Run.objects.filter(kind="workflow").exclude(pk=run.pk).get()
    assert response["Location"] == f"/p/acme/runs/{again.pk}/"
    advance(again.pk)
    assert statuses(again) == {"a": "completed", "b": "running"}


def test_the_runs_list_shows_root_runs_unless_asked(login, viewer, launch):
    run = launch("chain", {"x": 1})
    advance(run.pk)
    (child,) = children(run, "a")
    client = login(viewer)
    html = client.get("/p/acme/runs/").content.decode()
    assert run.pk in html and child.pk not in html
    html = client.get("/p/acme/runs/", {"children": "on"}).content.decode()
    assert child.pk in html


def test_admin_shows_a_workflow_runs_steps_and_child_runs(client, launch):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "r@example.com", "pw")
    client.force_login(admin)
    run = launch("gate")
    advance(run.pk)
    WorkflowApproval.objects.filter(run=run).update(status="approved", decided_by="x")
    advance(run.pk)
    (ship,) = children(run, "ship")
    html = client.get(f"/admin/runs/run/{run.pk}/change/").content.decode()
    assert "review" in html and "Ship it?" in html
    assert f"/admin/runs/run/{ship.pk}/change/" in html
    assert client.get(f"/admin/runs/run/{ship.pk}/change/").status_code == 200


def test_a_child_run_page_links_back_to_its_workflow_run(login, viewer, launch):
    run = launch("fanout", {"items": ["x"]})
    advance(run.pk)
    finish(children(run, "items")[0], output=["x"])
    (item,) = children(run, "each")
    html = login(viewer).get(f"/p/acme/runs/{item.pk}/").content.decode()
    assert f'href="/p/acme/runs/{run.pk}/"' in html
    assert "<code>each</code>" in html and "item 0" in html


def test_a_comment_no_database_stores_is_refused(login, operator, gate):
    response = login(operator).post(
        f"/p/acme/runs/{gate.pk}/approvals/review/", {"decision": "approve", "comment": "a\x00b"}
    )
    assert response.status_code == 400
    assert WorkflowApproval.objects.get(run=gate).status == "pending"
