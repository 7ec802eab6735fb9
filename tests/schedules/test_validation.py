"""Bad schedules are refused with errors that name the field and say why; nothing is stored."""

from __future__ import annotations

import pytest

from runs.models import Schedule
from runs.schedules import spec, store

pytestmark = pytest.mark.django_db


def errors_of(project, **fields) -> dict[str, str]:
    data = {"id": "s", "target": "task:sync-data", **fields}
    with pytest.raises(store.ScheduleError) as caught:
        store.create(project, data)
    assert not Schedule.objects.exists()
    return {e.field: e.message for e in caught.value.errors}


@pytest.mark.parametrize(
    ("cron", "field_name", "text"),
    [
        ("61 * * * *", "minute", "'61'"),
        ("0 25 * * *", "hour", "'25'"),
        ("0 0 32 * *", "day-of-month", "'32'"),
        ("0 0 * 13 *", "month", "'13'"),
        ("0 0 * * 9", "day-of-week", "'9'"),
    ],
)
def test_a_bad_cron_field_is_named(project, cron, field_name, text):
    message = errors_of(project, cron=cron)["cron"]
    assert field_name in message and text in message and "allowed" in message


def test_a_cron_needs_five_fields_and_known_aliases(project):
    assert "5 fields" in errors_of(project, cron="* * * * * *")["cron"]
    assert "interval_seconds" in errors_of(project, cron="* * * * * *")["cron"]
    assert "unknown alias" in errors_of(project, cron="@sometimes")["cron"]


@pytest.mark.parametrize(
    ("alias", "expanded"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_aliases_map_to_their_five_field_form(alias, expanded):
    assert spec.normalize_cron(alias) == expanded


def test_an_unknown_zone_says_so(project):
    assert (
        "unknown time zone 'Mars/Base'"
        in errors_of(project, cron="@daily", timezone="Mars/Base")["timezone"]
    )


def test_exactly_one_kind_of_timing(project):
    assert "exactly one" in errors_of(project)["cron"]
    assert "only one" in errors_of(project, cron="@daily", interval_seconds=60)["interval_seconds"]


def test_other_fields(project):
    errors = errors_of(
        project,
        cron="@daily",
        concurrency_policy="Sometimes",
        catch_up="maybe",
        interval_seconds=None,
        max_runs=0,
        start_at="yesterday",
        input=[1],
        colour="blue",
    )
    assert set(errors) >= {
        "concurrency_policy",
        "catch_up",
        "max_runs",
        "start_at",
        "input",
        "colour",
    }


def test_the_id_is_a_slug(project):
    assert "lowercase" in errors_of(project, id="Not A Slug", cron="@daily")["id"]


def test_the_target_must_exist_and_be_schedulable(project):
    assert "no task" in errors_of(project, target="task:nope", cron="@daily")["target"]
    assert (
        "not schedulable" in errors_of(project, target="task:long-running", cron="@daily")["target"]
    )


def test_input_is_checked_against_the_tasks_schema(project):
    errors = errors_of(project, cron="@daily", input={"limit": "ten"})
    assert "input.limit" in errors


def test_a_one_time_run_in_the_past_is_refused(project):
    assert "past" in errors_of(project, run_at="2001-01-01T00:00:00Z")["run_at"]


def test_end_before_start_is_refused(project):
    errors = errors_of(
        project, cron="@daily", start_at="2030-01-02T00:00:00Z", end_at="2030-01-01T00:00:00Z"
    )
    assert "after start_at" in errors["end_at"]


def test_a_duplicate_id_is_a_conflict(project):
    store.create(project, {"id": "s", "target": "task:sync-data", "cron": "@daily"})
    with pytest.raises(store.ScheduleError) as caught:
        store.create(project, {"id": "s", "target": "task:sync-data", "cron": "@daily"})
    assert caught.value.status == 409
