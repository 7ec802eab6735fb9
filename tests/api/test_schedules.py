"""The schedules API: create, read, change, pause/resume, trigger, ledger, preview, access."""

from __future__ import annotations

import json

import pytest
import time_machine

from runs.models import Run, Schedule
from runs.schedules import engine

from .conftest import assert_error

BASE = "/projects/acme/schedules"
NIGHTLY = {
    "id": "nightly-sync",
    "name": "Nightly sync",
    "target": "task:sync-data",
    "cron": "0 2 * * *",
    "timezone": "Europe/Berlin",
    "input": {"limit": 100},
    "concurrency_policy": "Forbid",
}
FIELDS = {
    "id", "name", "description", "target", "input", "config", "timeout_seconds",
    "backoff_limit", "cron", "interval_seconds", "run_at", "timezone", "start_at", "end_at",
    "max_runs", "concurrency_policy", "catch_up", "starting_deadline_seconds", "enabled",
    "pause_note", "source", "next_fire_at", "last_fired_at", "last_run_id", "run_count",
    "created_at", "updated_at", "metadata",
}  # fmt: skip


def send(api, method: str, path: str, body=None, *, token=...):
    return api.client.generic(
        method,
        f"/api{path}",
        "" if body is None else json.dumps(body),
        content_type="application/json",
        **api._headers(token),
    )


@time_machine.travel("2025-06-01T12:00:00Z", tick=False)
def test_it_creates_a_schedule_and_answers_201_with_it(api):
    response = api.post(BASE, NIGHTLY)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == FIELDS
    assert body["id"] == "nightly-sync" and body["source"] == "api"
    assert body["next_fire_at"] == "2025-06-02T00:00:00Z"  # 02:00 in Berlin (CEST)
    assert body["enabled"] is True and body["run_count"] == 0
    assert body["catch_up"] == "latest" and body["starting_deadline_seconds"] == 3600
    assert api.get(f"{BASE}/nightly-sync").json() == body
    assert [s["id"] for s in api.get(BASE).json()["data"]] == ["nightly-sync"]


def test_errors_name_the_field(api):
    error = assert_error(api.post(BASE, {**NIGHTLY, "cron": "0 24 * * *"}), 422)
    assert error["detail"][0]["field"] == "cron"
    assert "hour field '24'" in error["message"]
    error = assert_error(api.post(BASE, {**NIGHTLY, "timezone": "Europe/Atlantis"}), 422)
    assert error["detail"][0]["field"] == "timezone"
    assert "unknown time zone" in error["message"]
    error = assert_error(api.post(BASE, {**NIGHTLY, "input": {"limit": 0}}), 422, "invalid_input")
    assert error["detail"][0]["field"] == "input.limit"
    assert_error(api.post(BASE, [1, 2]), 422)
    assert_error(api.post(BASE, raw="{nope"), 400)
    assert not Schedule.objects.exists()


def test_a_duplicate_id_is_409(api):
    api.post(BASE, NIGHTLY)
    assert_error(api.post(BASE, NIGHTLY), 409, "conflict")


def test_patch_changes_fields_and_moves_the_next_fire_time(api):
    api.post(BASE, NIGHTLY)
    response = send(api, "PATCH", f"{BASE}/nightly-sync", {"interval_seconds": 300, "name": "x"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["interval_seconds"] == 300 and body["cron"] is None and body["name"] == "x"
    error = assert_error(send(api, "PATCH", f"{BASE}/nightly-sync", {"catch_up": "sometimes"}), 422)
    assert error["detail"][0]["field"] == "catch_up"


def test_delete_removes_it_and_keeps_its_runs(api, project):
    api.post(BASE, NIGHTLY)
    run_id = api.post(f"{BASE}/nightly-sync/trigger").json()["run"]["run_id"]
    assert send(api, "DELETE", f"{BASE}/nightly-sync").status_code == 204
    assert not Schedule.objects.exists()
    assert Run.objects.filter(pk=run_id).exists()
    assert_error(api.get(f"{BASE}/nightly-sync"), 404, "not_found")


def test_pause_with_a_note_and_resume(api):
    api.post(BASE, NIGHTLY)
    body = api.post(f"{BASE}/nightly-sync/pause", {"note": "DB migration"}).json()
    assert body["enabled"] is False and body["pause_note"] == "DB migration"
    assert api.post(f"{BASE}/nightly-sync/pause").status_code == 200  # no body is fine
    body = api.post(f"{BASE}/nightly-sync/resume").json()
    assert body["enabled"] is True and body["pause_note"] == ""


def test_trigger_runs_now_outside_the_slots(api):
    api.post(BASE, NIGHTLY)
    response = api.post(f"{BASE}/nightly-sync/trigger")
    assert response.status_code == 202
    run = response.json()["run"]
    assert run["trigger_kind"] == "schedule"
    assert run["metadata"] == {"scheduled_for": None, "manual": True}
    stored = Run.objects.get(pk=run["run_id"])
    assert stored.schedule_id == "nightly-sync" and stored.trigger_id == "nightly-sync"
    assert api.get(f"{BASE}/nightly-sync/occurrences").json()["data"] == []
    assert api.get(f"{BASE}/nightly-sync").json()["run_count"] == 0


def test_occurrences_are_paged_newest_first(api):
    with time_machine.travel("2025-06-01T00:00:00Z", tick=False):
        api.post(BASE, {**NIGHTLY, "cron": None, "interval_seconds": 60, "catch_up": "all"})
    with time_machine.travel("2025-06-01T00:05:00.100Z", tick=False):
        engine.tick()
    first = api.get(f"{BASE}/nightly-sync/occurrences", {"limit": 4}).json()
    assert [o["slot"] for o in first["data"]] == [
        "2025-06-01T00:05:00Z", "2025-06-01T00:04:00Z", "2025-06-01T00:03:00Z",
        "2025-06-01T00:02:00Z",
    ]  # fmt: skip
    occurrence = first["data"][0]
    assert set(occurrence) >= {"slot", "outcome", "run_id", "reason", "recorded_at"}
    assert occurrence["outcome"] in ("fired", "skipped_overlap")
    rest = api.get(
        f"{BASE}/nightly-sync/occurrences", {"limit": 4, "cursor": first["page_info"]["next"]}
    ).json()
    assert [o["slot"] for o in rest["data"]] == ["2025-06-01T00:01:00Z", "2025-06-01T00:00:00Z"]
    assert rest["page_info"]["next"] is None and rest["page_info"]["prev"]
    assert_error(api.get(f"{BASE}/nightly-sync/occurrences", {"cursor": "garbage"}), 422)


@time_machine.travel("2025-10-25T12:00:00Z", tick=False)
def test_preview_lists_the_next_fire_times_in_utc_and_the_zone(api):
    api.post(BASE, NIGHTLY)
    api.post(f"{BASE}/nightly-sync/pause")  # works for paused schedules too
    body = api.get(f"{BASE}/nightly-sync/preview", {"count": 3}).json()
    assert body["timezone"] == "Europe/Berlin"
    assert body["data"] == [
        {"utc": "2025-10-26T00:00:00Z", "local": "2025-10-26T02:00:00+02:00"},
        {"utc": "2025-10-27T01:00:00Z", "local": "2025-10-27T02:00:00+01:00"},
        {"utc": "2025-10-28T01:00:00Z", "local": "2025-10-28T02:00:00+01:00"},
    ]
    assert_error(api.get(f"{BASE}/nightly-sync/preview", {"count": 101}), 422)


# --- Access ------------------------------------------------------------------------------------

READS = [
    ("GET", BASE),
    ("GET", f"{BASE}/nightly-sync"),
    ("GET", f"{BASE}/nightly-sync/occurrences"),
    ("GET", f"{BASE}/nightly-sync/runs"),
    ("GET", f"{BASE}/nightly-sync/preview"),
]
WRITES = [
    ("POST", BASE, {**NIGHTLY, "id": "another"}),
    ("PATCH", f"{BASE}/nightly-sync", {"name": "changed"}),
    ("DELETE", f"{BASE}/nightly-sync", None),
    ("POST", f"{BASE}/nightly-sync/pause", {"note": "x"}),
    ("POST", f"{BASE}/nightly-sync/resume", None),
    ("POST", f"{BASE}/nightly-sync/trigger", None),
]


@pytest.fixture
def nightly(api):
    assert api.post(BASE, NIGHTLY).status_code == 201
    return Schedule.objects.get()


def snapshot():
    return (
        list(Schedule.objects.values()),
        Run.objects.count(),
    )


@pytest.mark.parametrize(("method", "path"), READS)
def test_reads_by_persona(api, nightly, read_only_secret, outsider_secret, method, path):
    assert send(api, method, path).status_code == 200
    assert send(api, method, path, token=read_only_secret).status_code == 200
    assert_error(send(api, method, path, token=outsider_secret), 404, "not_found")
    assert_error(send(api, method, path, token=None), 401, "unauthorized")


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_writes_by_persona(api, nightly, read_only_secret, outsider_secret, method, path, body):
    before = snapshot()
    assert_error(send(api, method, path, body, token=read_only_secret), 403, "read_only_token")
    assert_error(send(api, method, path, body, token=outsider_secret), 404, "not_found")
    assert_error(send(api, method, path, body, token=None), 401, "unauthorized")
    assert snapshot() == before
    assert send(api, method, path, body).status_code in (200, 201, 202, 204)


def test_another_projects_schedule_is_404(api, other_project):
    from runs.schedules import store

    store.create(other_project, {**NIGHTLY})
    assert_error(api.get(f"{BASE}/nightly-sync"), 404)
    assert_error(api.get("/projects/outsider/schedules"), 404)


def test_a_file_schedule_is_read_only_but_can_be_paused(api, settings, tmp_path):
    settings.STUDIO_SCHEDULES_DIR = tmp_path
    (tmp_path / "from-file.py").write_text(
        "from runs.schedules import schedule\n"
        "schedule(cron='@daily', target='task:sync-data', project='acme')\n"
    )
    listed = api.get(BASE).json()["data"]
    assert [(s["id"], s["source"]) for s in listed] == [("from-file", "file")]
    path = f"{BASE}/from-file"
    assert_error(send(api, "PATCH", path, {"name": "x"}), 409, "file_schedule")
    assert_error(send(api, "DELETE", path), 409, "file_schedule")
    assert api.post(f"{path}/pause", {"note": "x"}).json()["enabled"] is False
    assert api.post(f"{path}/resume").json()["enabled"] is True


@pytest.mark.parametrize("bad_id", ["%00", "x" * 300, "Upper", "a%2Fb"])
def test_ids_no_schedule_can_have_are_404(api, bad_id):
    assert_error(api.get(f"{BASE}/{bad_id}"), 404, "not_found")
    assert_error(api.post(f"{BASE}/{bad_id}/trigger"), 404, "not_found")


def test_crafted_bodies_are_422_not_500(api):
    for body in (
        {**NIGHTLY, "name": "a\x00b"},
        {**NIGHTLY, "timezone": "\x00"},
        {**NIGHTLY, "run_at": "\x00", "cron": None},
        {**NIGHTLY, "cron": "\x00 * * * *"},
        {**NIGHTLY, "input": {"k": "\x00"}},
        {**NIGHTLY, "timezone": "../../etc/passwd"},
        {**NIGHTLY, "max_runs": True},
        {**NIGHTLY, "interval_seconds": 10**30, "cron": None},
        {**NIGHTLY, "start_at": "9999-12-31T23:59:59+00:00"},
    ):
        response = api.post(BASE, body)
        assert response.status_code in (201, 422), (body, response.content)
    assert_error(api.post(f"{BASE}/nightly-sync/pause", {"note": 5}), 422)
