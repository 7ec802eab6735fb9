"""The schedules pages: list, detail with ledger, form with live preview, actions, access."""

from __future__ import annotations

import pytest
import time_machine

from runs.models import Run, Schedule
from runs.schedules import engine, store

pytestmark = pytest.mark.django_db

BASE = "/p/acme/schedules"


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr("runs.lifecycle.enqueue", lambda run_id, **kw: None)


@pytest.fixture(autouse=True)
def no_files(settings, tmp_path):
    settings.STUDIO_SCHEDULES_DIR = tmp_path


@pytest.fixture
def nightly(project):
    return store.create(
        project,
        {
            "id": "nightly",
            "name": "Nightly sync",
            "target": "task:sync-data",
            "cron": "0 2 * * *",
            "timezone": "Europe/Berlin",
        },
    )


FORM = {
    "id": "every-minute",
    "name": "Every minute",
    "target": "task:sync-data",
    "input": '{"limit": 3}',
    "cron": "* * * * *",
    "timezone": "UTC",
    "concurrency_policy": "Forbid",
    "catch_up": "latest",
    "starting_deadline_seconds": "3600",
}


def test_the_list_shows_next_fire_last_run_state_and_source(login, viewer, nightly):
    with time_machine.travel("2025-06-01T00:00:00.500Z", tick=False):
        run = store.trigger(nightly)
    page = login(viewer).get(f"{BASE}/").content.decode()
    assert "Nightly sync" in page and "cron 0 2 * * * (Europe/Berlin)" in page
    assert nightly.next_fire_at.strftime("%Y-%m-%d %H:%M:%S") in page
    assert run.pk in page and "Enabled" in page and "API / dashboard" in page
    assert "New schedule" not in page  # viewers read only


def test_the_detail_page_shows_next_times_ledger_and_runs(login, viewer, project):
    with time_machine.travel("2025-06-01T00:30:00Z", tick=False):
        schedule = store.create(
            project, {"id": "hourly", "target": "task:sync-data", "cron": "0 * * * *"}
        )
    with time_machine.travel("2025-06-01T03:00:00.100Z", tick=False):
        (run_id,) = engine.tick().fired
        page = login(viewer).get(f"{BASE}/hourly/").content.decode()
    assert "Next fire times" in page and "2025-06-01 04:00" in page
    assert "missed" in page and "fired" in page and "and 1 more" in page
    assert run_id in page and "2025-06-01T03:00:00Z" in page
    assert "Trigger now" not in page
    assert schedule.slug in page


def test_the_ledger_and_runs_refresh_themselves_until_the_schedule_is_done(login, viewer, project):
    with time_machine.travel("2025-06-01T00:00:00Z", tick=False):
        store.create(
            project, {"id": "once", "target": "task:sync-data", "run_at": "2025-06-01T01:00:00Z"}
        )
    client = login(viewer)
    url = f"{BASE}/once/"
    assert 'hx-trigger="every 2s"' in client.get(url).content.decode()
    with time_machine.travel("2025-06-01T01:00:00.200Z", tick=False):
        (run_id,) = engine.tick().fired
    fragment = client.get(url, {"live": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.startswith('<div id="schedule-live"') and run_id in fragment
    assert "<html" not in fragment
    assert 'hx-trigger="every 2s"' in fragment  # done, but its run is still active
    Run.objects.filter(pk=run_id).update(status="completed")
    fragment = client.get(url, {"live": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in fragment  # nothing more can happen: the poll stops


def test_an_operator_creates_a_schedule_from_the_form(login, operator):
    client = login(operator)
    form = client.get(f"{BASE}/new/").content.decode()
    assert "Sync external data (task:sync-data)" in form
    assert "task:long-running" not in form  # not schedulable
    response = client.post(f"{BASE}/new/", FORM)
    assert response.status_code == 302 and response["Location"] == f"{BASE}/every-minute/"
    schedule = Schedule.objects.get(slug="every-minute")
    assert schedule.input == {"limit": 3} and schedule.concurrency_policy == "Forbid"
    assert schedule.created_by == "oscar"


def test_bad_input_keeps_what_was_typed_and_names_the_field(login, operator):
    response = login(operator).post(f"{BASE}/new/", {**FORM, "cron": "0 24 * * *", "name": "Kept"})
    assert response.status_code == 422
    page = response.content.decode()
    assert (
        "hour field &#x27;24&#x27; is not valid" in page or "hour field '24' is not valid" in page
    )
    assert 'value="Kept"' in page and 'value="0 24 * * *"' in page
    assert not Schedule.objects.exists()
    response = login(operator).post(f"{BASE}/new/", {**FORM, "input": "{nope"})
    assert "not valid JSON" in response.content.decode()


def test_the_preview_describes_the_cron_and_lists_five_times(login, operator):
    with time_machine.travel("2025-03-29T12:00:00Z", tick=False):
        response = login(operator).get(
            f"{BASE}/preview/", {"cron": "30 2 * * *", "timezone": "Europe/Berlin"}
        )
    page = response.content.decode()
    assert "At 02:30 every day" in page
    assert page.count("<li>") == 5
    assert "Sun 2025-03-30 03:00:00 CEST" in page  # the skipped 02:30 fires right after the jump
    bad = login(operator).get(f"{BASE}/preview/", {"cron": "0 2 * *", "timezone": "UTC"})
    assert "5 fields" in bad.content.decode()
    zone = login(operator).get(f"{BASE}/preview/", {"cron": "@daily", "timezone": "Nowhere/X"})
    assert "unknown time zone" in zone.content.decode()


def test_edit_changes_the_schedule(login, operator, nightly):
    client = login(operator)
    assert 'value="0 2 * * *"' in client.get(f"{BASE}/nightly/edit/").content.decode()
    response = client.post(
        f"{BASE}/nightly/edit/",
        {**FORM, "id": "ignored", "cron": "15 3 * * *", "timezone": "Europe/Berlin"},
    )
    assert response.status_code == 302
    nightly.refresh_from_db()
    assert nightly.cron == "15 3 * * *" and nightly.slug == "nightly"


def test_pause_resume_trigger_and_delete(login, operator, nightly):
    client = login(operator)
    client.post(f"{BASE}/nightly/pause/", {"note": "migrating"})
    nightly.refresh_from_db()
    assert not nightly.enabled and nightly.pause_note == "migrating"
    assert "Paused: migrating" in client.get(f"{BASE}/nightly/").content.decode()
    client.post(f"{BASE}/nightly/resume/")
    nightly.refresh_from_db()
    assert nightly.enabled
    response = client.post(f"{BASE}/nightly/trigger/")
    run = Run.objects.get(schedule_id="nightly")
    assert response["Location"] == f"/p/acme/runs/{run.pk}/"
    assert run.metadata == {"scheduled_for": None, "manual": True}
    client.post(f"{BASE}/nightly/delete/")
    assert not Schedule.objects.exists()
    assert client.post(f"{BASE}/nightly/explode/").status_code == 404


def test_the_overview_lists_upcoming_runs(login, viewer, nightly):
    page = login(viewer).get("/p/acme/").content.decode()
    assert "Upcoming runs" in page and "Nightly sync" in page


# --- Access: every page and action x persona ---------------------------------------------------

PAGES = ["/", "/new/", "/preview/?cron=@daily&timezone=UTC", "/nightly/", "/nightly/edit/"]
ACTIONS = [
    "/nightly/pause/",
    "/nightly/resume/",
    "/nightly/trigger/",
    "/nightly/delete/",
    "/new/",
    "/nightly/edit/",
]


def state():
    return list(Schedule.objects.values()), Run.objects.count()


@pytest.mark.parametrize("page", PAGES)
def test_pages_by_persona(client, login, owner, operator, viewer, outsider, nightly, page):
    url = f"{BASE}{page}"
    assert client.get(url).status_code == 302  # anonymous: to the login page
    operator_only = page in ("/new/", "/nightly/edit/")
    assert login(viewer).get(url).status_code == (403 if operator_only else 200)
    assert login(operator).get(url).status_code == 200
    assert login(owner).get(url).status_code == 200
    assert login(outsider).get(url).status_code == 404


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_by_persona(client, login, viewer, outsider, nightly, action):
    url = f"{BASE}{action}"
    before = state()
    body = {**FORM, "id": "x"}
    assert client.post(url, body).status_code == 302
    assert login(viewer).post(url, body).status_code == 403
    assert login(outsider).post(url, body).status_code == 404
    assert state() == before


def test_a_file_schedule_offers_no_edit_or_delete(login, operator, settings, tmp_path, project):
    (tmp_path / "from-file.py").write_text(
        "from runs.schedules import schedule\n"
        "schedule(cron='@daily', target='task:sync-data', project='acme')\n"
    )
    client = login(operator)
    assert "From file" in client.get(f"{BASE}/").content.decode()
    page = client.get(f"{BASE}/from-file/").content.decode()
    assert "Edit" not in page and "Yes, delete" not in page and "Pause" in page
    assert client.get(f"{BASE}/from-file/edit/").status_code == 409
    client.post(f"{BASE}/from-file/delete/")
    assert Schedule.objects.filter(slug="from-file").exists()
