"""Bulk actions and saved filters on the dashboard's runs list: confirmation with the count,
a background operation with progress, and who may do what."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from runs import operations
from runs.models import Operation, Run, SavedFilter
from tests.dashboard.conftest import make_run, make_user

pytestmark = pytest.mark.django_db

BULK = "/p/acme/runs/bulk/"


@pytest.fixture(autouse=True)
def _no_queue(monkeypatch):
    monkeypatch.setattr("runs.lifecycle.enqueue", lambda run_id, **kw: None)


def run_all(operation: Operation) -> Operation:
    while operations.process_batch(operation.pk):
        pass
    operation.refresh_from_db()
    return operation


def test_operators_see_checkboxes_and_viewers_do_not(login, operator, viewer, project):
    make_run(project)
    assert 'name="run_ids"' in login(operator).get("/p/acme/runs/").content.decode()
    assert 'name="run_ids"' not in login(viewer).get("/p/acme/runs/").content.decode()


def test_cancelling_checked_runs_asks_first_stating_the_count(login, operator, project):
    a, b = make_run(project), make_run(project)
    finished = make_run(project, status="completed")
    client = login(operator)
    response = client.post(
        BULK, {"action": "cancel", "scope": "selected", "run_ids": [a.pk, b.pk, finished.pk]}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Cancel 2 runs?" in page
    assert "Yes, cancel 2 runs" in page
    assert not Operation.objects.exists()
    a.refresh_from_db()
    assert a.status == "pending"

    response = client.post(
        BULK,
        {
            "action": "cancel",
            "scope": "selected",
            "run_ids": [a.pk, b.pk, finished.pk],
            "confirm": "on",
        },
    )
    operation = Operation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/p/acme/operations/{operation.pk}/"
    assert operation.total == 2 and operation.created_by == "oscar"
    progress = client.get(response["Location"]).content.decode()
    assert "0 of 2 processed" in progress and 'hx-trigger="every 1s"' in progress

    run_all(operation)
    assert set(Run.objects.filter(status="cancelled").values_list("pk", flat=True)) == {a.pk, b.pk}
    progress = client.get(response["Location"]).content.decode()
    assert "Done:" in progress and "2 cancelled" in progress
    assert "hx-trigger" not in progress.split('id="operation-progress"')[1].split(">")[0]


def test_all_that_match_the_filter(login, operator, project):
    for _ in range(3):
        make_run(project, target="task:sync-data")
    make_run(project, target="task:long-running")
    client = login(operator)
    # The hidden scope=selected comes first; the checked "all" box overrides it.
    body = {"action": "rerun", "scope": ["selected", "filter"], "query": "target=task:sync-data"}
    page = client.post(BULK, body).content.decode()
    assert "Re-run 3 runs?" in page
    client.post(BULK, {**body, "confirm": "on"})
    operation = run_all(Operation.objects.get())
    assert operation.kind == "rerun" and operation.succeeded == 3
    assert Run.objects.filter(target="task:sync-data").count() == 6
    assert Run.objects.filter(target="task:long-running").count() == 1


def test_nothing_checked_says_so(login, operator, project):
    make_run(project)
    response = login(operator).post(BULK, {"action": "cancel", "scope": "selected"}, follow=True)
    assert "Select at least one run first." in response.content.decode()
    assert not Operation.objects.exists()


def test_a_crafted_action_changes_nothing(login, operator, project):
    run = make_run(project)
    response = login(operator).post(
        BULK, {"action": "delete", "scope": "selected", "run_ids": [run.pk], "confirm": "on"}
    )
    assert response.status_code == 302
    assert not Operation.objects.exists()


def test_another_projects_runs_cannot_be_smuggled_in(login, operator, project, other_project):
    theirs = make_run(other_project)
    login(operator).post(
        BULK, {"action": "cancel", "scope": "selected", "run_ids": [theirs.pk], "confirm": "on"}
    )
    assert not Operation.objects.exists()
    theirs.refresh_from_db()
    assert theirs.status == "pending"


@pytest.mark.parametrize("persona, status", [("viewer", 403), ("outsider", 404)])
def test_viewers_and_outsiders_cannot_act_in_bulk(login, persona, status, request, project):
    run = make_run(project)
    body = {"action": "cancel", "scope": "selected", "run_ids": [run.pk], "confirm": "on"}
    assert login(request.getfixturevalue(persona)).post(BULK, body).status_code == status
    assert not Operation.objects.exists()


def test_anonymous_bulk_goes_to_login(client, project):
    run = make_run(project)
    response = client.post(BULK, {"action": "cancel", "scope": "selected", "run_ids": [run.pk]})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_operation_page_access(login, viewer, outsider, operator, project):
    run = make_run(project)
    operation = operations.start(project, "cancel", run_ids=[run.pk], created_by="oscar")
    url = f"/p/acme/operations/{operation.pk}/"
    assert login(viewer).get(url).status_code == 200
    assert login(outsider).get(url).status_code == 404
    assert login(operator).get("/p/acme/operations/not-a-uuid/").status_code == 404


# --- saved filters -------------------------------------------------------------------------------


def test_a_user_saves_a_filter_and_only_they_see_it(login, viewer, operator, project):
    client = login(viewer)
    response = client.post(
        "/p/acme/runs/filters/",
        {"name": "Failed syncs", "query": "status=failed&target=task:sync-data&before=junk"},
    )
    assert response.status_code == 302
    saved = SavedFilter.objects.get()
    assert saved.query == "status=failed&target=task%3Async-data"  # page cursors dropped
    page = client.get("/p/acme/runs/").content.decode()
    assert "Failed syncs" in page and f"?{escape(saved.query)}" in page
    assert "Failed syncs" not in login(operator).get("/p/acme/runs/").content.decode()


def test_saving_again_under_the_same_name_replaces_it(login, viewer, project):
    client = login(viewer)
    client.post("/p/acme/runs/filters/", {"name": "Mine", "query": "status=failed"})
    client.post("/p/acme/runs/filters/", {"name": "Mine", "query": "status=pending"})
    assert list(SavedFilter.objects.values_list("query", flat=True)) == ["status=pending"]


@pytest.mark.parametrize(
    "body, lands_on",
    [
        ({"name": "", "query": "status=failed"}, 200),
        # back on the runs list with the filter it could not read: a 400 naming it
        ({"name": "x", "query": "status=bogus"}, 400),
    ],
)
def test_a_bad_filter_is_not_saved(login, viewer, project, body, lands_on):
    response = login(viewer).post("/p/acme/runs/filters/", body, follow=True)
    assert response.status_code == lands_on
    assert not SavedFilter.objects.exists()


def test_only_the_owner_deletes_a_saved_filter(login, viewer, operator, outsider, project):
    login(viewer).post("/p/acme/runs/filters/", {"name": "Mine", "query": "status=failed"})
    saved = SavedFilter.objects.get()
    url = f"/p/acme/runs/filters/{saved.pk}/delete/"
    assert login(operator).post(url).status_code == 404
    assert login(outsider).post(url).status_code == 404
    assert SavedFilter.objects.exists()
    assert login(viewer).post(url).status_code == 302
    assert not SavedFilter.objects.exists()


def test_saved_filters_need_login_and_membership(client, outsider, login, project):
    assert client.post("/p/acme/runs/filters/", {"name": "x"}).status_code == 302
    assert login(outsider).post("/p/acme/runs/filters/", {"name": "x"}).status_code == 404
    assert not SavedFilter.objects.exists()
    stranger = make_user("sam")
    assert login(stranger).post("/p/acme/runs/filters/", {"name": "x"}).status_code == 404
