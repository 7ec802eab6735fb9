"""The Python SDK's schedule methods against a live Studio server."""

from __future__ import annotations

import pytest

from runs.client import Accepted, RunsClient, RunsError

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def runs(live_server, secret):
    with RunsClient(
        api_url=f"{live_server.url}/api", auth_token=secret, project_reference="acme"
    ) as client:
        yield client


def test_it_manages_a_schedule(runs):
    created = runs.create_schedule(
        id="nightly", target="task:sync-data", cron="@daily", timezone="Europe/Berlin"
    )
    assert created["cron"] == "0 0 * * *" and created["source"] == "api"
    assert [s["id"] for s in runs.list_schedules()] == ["nightly"]
    assert runs.update_schedule("nightly", name="Nightly")["name"] == "Nightly"
    assert runs.pause_schedule("nightly", note="later")["enabled"] is False
    assert runs.resume_schedule("nightly")["enabled"] is True
    assert len(runs.preview_schedule("nightly", count=3)) == 3
    accepted = runs.trigger_schedule("nightly")
    assert isinstance(accepted, Accepted) and accepted.run.trigger_kind == "schedule"
    assert runs.schedule_occurrences("nightly")["data"] == []
    runs.delete_schedule("nightly")
    with pytest.raises(RunsError) as caught:
        runs.get_schedule("nightly")
    assert caught.value.status == 404


def test_errors_name_the_field(runs):
    with pytest.raises(RunsError) as caught:
        runs.create_schedule(id="bad", target="task:sync-data", cron="0 2 * * mon-xyz")
    assert caught.value.status == 422
    assert caught.value.detail[0]["field"] == "cron"
