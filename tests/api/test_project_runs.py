"""GET /api/projects/{ref}/runs: newest first, keyset pages with opaque cursors, filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from runs.models import Run

from .conftest import assert_error, make_run

pytestmark = pytest.mark.django_db


def make_runs(project, count: int, *, start=None, **fields) -> list[Run]:
    """`count` runs one second apart, oldest first."""
    start = start or timezone.now() - timedelta(hours=1)
    return [
        make_run(project, created_at=start + timedelta(seconds=i), **fields) for i in range(count)
    ]


def run_ids(page) -> list[str]:
    return [r["run_id"] for r in page["data"]]


def walk(api, path, params=None, direction="next"):
    """Follow cursors from the first page to the end; return all ids in order."""
    params = dict(params or {})
    page = api.get(path, params).json()
    seen = run_ids(page)
    while page["page_info"][direction]:
        page = api.get(path, {**params, "cursor": page["page_info"][direction]}).json()
        seen += run_ids(page)
    return seen


def test_it_lists_the_projects_runs_newest_first(api, project, other_project):
    runs = make_runs(project, 3)
    make_run(other_project)
    response = api.get("/projects/acme/runs")
    assert response.status_code == 200
    page = response.json()
    assert run_ids(page) == [r.pk for r in reversed(runs)]
    assert page["page_info"] == {"self": None, "first": None, "next": None, "prev": None}


def test_it_accepts_the_project_id_as_reference(api, project):
    run = make_run(project)
    for ref in (str(project.id), str(project.id).upper(), project.id.hex):
        assert run_ids(api.get(f"/projects/{ref}/runs").json()) == [run.pk]


def test_it_answers_404_for_another_or_unknown_project(api, other_project):
    assert_error(api.get("/projects/outsider/runs"), 404, "not_found")
    assert_error(api.get(f"/projects/{other_project.id}/runs"), 404, "not_found")
    assert_error(api.get("/projects/nowhere/runs"), 404, "not_found")


def test_it_pages_through_every_run_exactly_once(api, project):
    runs = make_runs(project, 7)
    seen = walk(api, "/projects/acme/runs", {"limit": 3})
    assert seen == [r.pk for r in reversed(runs)]


def test_runs_created_at_the_same_instant_are_neither_skipped_nor_repeated(api, project):
    instant = timezone.now() - timedelta(minutes=5)
    runs = [make_run(project, created_at=instant) for _ in range(5)]
    seen = walk(api, "/projects/acme/runs", {"limit": 2})
    assert sorted(seen) == sorted(r.pk for r in runs)
    assert len(seen) == len(set(seen)) == 5


def test_pages_stay_put_while_new_runs_arrive(api, project, task_body):
    older = make_runs(project, 6)
    first = api.get("/projects/acme/runs", {"limit": 2}).json()
    seen = run_ids(first)
    cursor = first["page_info"]["next"]
    arrived = []
    while cursor:
        # Other clients start runs between our page fetches.
        arrived.append(api.post("/runs", task_body()).json()["run"]["run_id"])
        page = api.get("/projects/acme/runs", {"limit": 2, "cursor": cursor}).json()
        seen += run_ids(page)
        cursor = page["page_info"]["next"]
    assert seen == [r.pk for r in reversed(older)]  # no duplicates, no gaps
    assert len(arrived) == 2
    # Going back from page two reaches page one again, and past it the newcomers.
    second = api.get("/projects/acme/runs", {"limit": 2, "cursor": first["page_info"]["next"]})
    back = api.get(
        "/projects/acme/runs", {"limit": 2, "cursor": second.json()["page_info"]["prev"]}
    )
    assert run_ids(back.json()) == run_ids(first)
    newest = api.get(
        "/projects/acme/runs", {"limit": 2, "cursor": back.json()["page_info"]["prev"]}
    )
    assert sorted(run_ids(newest.json())) == sorted(arrived)


def test_prev_walks_back_to_the_first_page(api, project):
    runs = make_runs(project, 5)
    newest_first = [r.pk for r in reversed(runs)]
    page = api.get("/projects/acme/runs", {"limit": 2}).json()
    while page["page_info"]["next"]:
        page = api.get(
            "/projects/acme/runs", {"limit": 2, "cursor": page["page_info"]["next"]}
        ).json()
    assert run_ids(page) == newest_first[4:]
    back = []
    while page["page_info"]["prev"]:
        page = api.get(
            "/projects/acme/runs", {"limit": 2, "cursor": page["page_info"]["prev"]}
        ).json()
        back = run_ids(page) + back
    assert back == newest_first[:4]
    assert page["page_info"]["prev"] is None  # back at the newest


def test_the_limit_is_bounded(api, project):
    make_runs(project, 3)
    assert len(api.get("/projects/acme/runs", {"limit": 200}).json()["data"]) == 3
    for bad in (0, 201, -5, "all"):
        error = assert_error(
            api.get("/projects/acme/runs", {"limit": bad}), 422, "validation_error"
        )
        assert error["detail"][0]["field"] == "limit"


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "e30",
        "eyJkIjoibmV4dCJ9",
        "%%%",
        "eyJkIjoibmV4dCIsInQiOiIyMDI0LTAxLTAxIiwiaSI6InJ1bl8xIn0",
    ],
)
def test_it_refuses_a_cursor_it_did_not_hand_out(api, project, cursor):
    assert_error(api.get("/projects/acme/runs", {"cursor": cursor}), 422, "invalid_cursor")


def test_it_filters_by_status_target_kind_and_trigger(api, project):
    done = make_run(project, status=Run.Status.COMPLETED, trigger_kind="schedule")
    failed = make_run(project, status=Run.Status.FAILED, target="task:failing-task")
    pending = make_run(project)
    assert run_ids(api.get("/projects/acme/runs", {"status": "completed"}).json()) == [done.pk]
    assert run_ids(api.get("/projects/acme/runs", {"target": "task:failing-task"}).json()) == [
        failed.pk
    ]
    assert run_ids(api.get("/projects/acme/runs", {"trigger_kind": "schedule"}).json()) == [done.pk]
    assert set(run_ids(api.get("/projects/acme/runs", {"kind": "task"}).json())) == {
        done.pk,
        failed.pk,
        pending.pk,
    }
    assert run_ids(api.get("/projects/acme/runs", {"kind": "workflow"}).json()) == []


def test_it_filters_by_parent(api, project):
    parent = make_run(project)
    child = make_run(project, parent_run=parent, root_run=parent)
    make_run(project)
    assert run_ids(api.get("/projects/acme/runs", {"parent_run_id": parent.pk}).json()) == [
        child.pk
    ]


def test_it_filters_by_creation_time(api, project):
    start = timezone.now() - timedelta(days=1)
    runs = make_runs(project, 4, start=start)
    params = {
        "created_after": (start + timedelta(seconds=0.5)).isoformat(),
        "created_before": (start + timedelta(seconds=2.5)).isoformat(),
    }
    assert run_ids(api.get("/projects/acme/runs", params).json()) == [runs[2].pk, runs[1].pk]


def test_filters_hold_across_pages(api, project):
    wanted = make_runs(project, 5, status=Run.Status.FAILED)
    make_runs(project, 5, status=Run.Status.COMPLETED)
    seen = walk(api, "/projects/acme/runs", {"limit": 2, "status": "failed"})
    assert seen == [r.pk for r in reversed(wanted)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"kind": "job"}, "kind"),
        ({"trigger_kind": "cron"}, "trigger_kind"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "1700000000"}, "created_after"),
        ({"created_before": "0001-01-01T00:00:00+14:00"}, "created_before"),
        ({"target": "task:\x00"}, "target"),
    ],
)
def test_it_refuses_bad_filters_naming_them(api, project, params, field):
    error = assert_error(api.get("/projects/acme/runs", params), 422, "validation_error")
    assert error["detail"][0]["field"] == field


def test_a_read_only_token_can_list(api, project, read_only_secret):
    run = make_run(project)
    assert run_ids(api.get("/projects/acme/runs", token=read_only_secret).json()) == [run.pk]
