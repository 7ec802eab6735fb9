"""GET /api/runs/{id}/events: a run's event stream, oldest first, in pages."""

from __future__ import annotations

import pytest

from runs.models import RunEvent

from .conftest import assert_error, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(project):
    run = make_run(project)
    RunEvent.objects.bulk_create(
        [
            RunEvent(run=run, event_type="log", payload={"stream": "stdout", "line": f"line {i}"})
            for i in range(5)
        ]
    )
    return run


def ids(response) -> list[int]:
    return [e["event_id"] for e in response.json()["data"]]


def test_it_lists_events_oldest_first(api, run):
    response = api.get(f"/runs/{run.pk}/events")
    assert response.status_code == 200
    data = response.json()
    assert [e["payload"]["line"] for e in data["data"]] == [f"line {i}" for i in range(5)]
    assert set(data["data"][0]) == {"event_id", "event_type", "payload", "created_at"}
    assert isinstance(data["data"][0]["event_id"], int)
    assert ids(response) == sorted(ids(response))
    assert data["page_info"] == {"self": None, "first": None, "next": None, "prev": None}


def test_it_lists_only_events_after_the_given_id(api, run):
    all_ids = ids(api.get(f"/runs/{run.pk}/events"))
    response = api.get(f"/runs/{run.pk}/events", {"after_event_id": all_ids[2]})
    assert ids(response) == all_ids[3:]
    assert ids(api.get(f"/runs/{run.pk}/events", {"after_event_id": all_ids[-1]})) == []


def test_it_pages_with_a_limit_and_a_next_cursor(api, run):
    all_ids = ids(api.get(f"/runs/{run.pk}/events"))
    first = api.get(f"/runs/{run.pk}/events", {"limit": 2}).json()
    assert [e["event_id"] for e in first["data"]] == all_ids[:2]
    seen = [e["event_id"] for e in first["data"]]
    cursor = first["page_info"]["next"]
    while cursor:
        page = api.get(f"/runs/{run.pk}/events", {"limit": 2, "cursor": cursor}).json()
        assert page["page_info"]["self"] == cursor
        seen += [e["event_id"] for e in page["data"]]
        cursor = page["page_info"]["next"]
    assert seen == all_ids


def test_it_shows_events_written_after_the_last_page_to_a_client_that_asks_again(api, run):
    last = ids(api.get(f"/runs/{run.pk}/events"))[-1]
    RunEvent.objects.create(run=run, event_type="run.completed", payload={"output": {"synced": 1}})
    newer = api.get(f"/runs/{run.pk}/events", {"after_event_id": last}).json()["data"]
    assert [e["event_type"] for e in newer] == ["run.completed"]


def test_it_never_mixes_in_another_runs_events(api, project, run):
    other = make_run(project)
    RunEvent.objects.create(run=other, event_type="log", payload={"line": "other"})
    lines = [e["payload"].get("line") for e in api.get(f"/runs/{run.pk}/events").json()["data"]]
    assert "other" not in lines


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after_event_id": -1}, "after_event_id"),
        ({"after_event_id": "x"}, "after_event_id"),
        ({"after_event_id": 2**63}, "after_event_id"),
    ],
)
def test_it_refuses_bad_paging_parameters(api, run, params, field):
    error = assert_error(api.get(f"/runs/{run.pk}/events", params), 422, "validation_error")
    assert error["detail"][0]["field"] == field


def test_it_accepts_the_largest_limit(api, run):
    assert len(api.get(f"/runs/{run.pk}/events", {"limit": 1000}).json()["data"]) == 5


@pytest.mark.parametrize("cursor", ["garbage", "eyJhZnRlciI6ICJ4In0", "W10"])
def test_it_refuses_a_cursor_it_did_not_hand_out(api, run, cursor):
    assert_error(api.get(f"/runs/{run.pk}/events", {"cursor": cursor}), 422, "invalid_cursor")
