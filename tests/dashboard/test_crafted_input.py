"""Crafted input against the dashboard and the admin: each one a clear 4xx, never a 500."""

from __future__ import annotations

import pytest

from runs.models import Run

from .conftest import make_run
from .test_launch import URL, VALID

pytestmark = pytest.mark.django_db

LAUNCH = "/p/acme/tasks/reports-weekly/"  # a task without a schema: input is a JSON editor


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_a_date_at_the_end_of_the_calendar_is_400_with_the_field_named(login, viewer, day):
    response = login(viewer).get(f"/p/acme/runs/?until={day}&since={day}")
    assert response.status_code in (200, 400)
    if day == "9999-12-31":
        assert response.status_code == 400
        html = response.content.decode()
        assert "Enter a date before 9999-12-31." in html
        assert 'aria-invalid="true" aria-describedby="until-errors"' in html
        assert f'value="{day}"' in html  # what was typed stays in the form


@pytest.mark.parametrize("name", ["after", "before"])
@pytest.mark.parametrize(
    "cursor",
    [
        "9" * 30 + "~run_" + "0" * 32,  # past the calendar
        "9" * 79,  # no run id at all
        "1" * 200 + "~run_" + "0" * 32,  # longer than any cursor Studio hands out
    ],
)
def test_a_forged_or_overlong_page_cursor_is_400(login, viewer, project, name, cursor):
    # (A position before 1970 is a real instant, not a forgery: runs.models.paging pages from it.)
    make_run(project)
    response = login(viewer).get("/p/acme/runs/", {name: cursor})
    assert response.status_code == 400
    assert "Not a valid page link." in response.content.decode()


@pytest.mark.parametrize(
    "config, message",
    [
        ('{"x": NaN}', "NaN is not valid JSON"),
        ('{"x": Infinity}', "Infinity is not valid JSON"),
        ('{"x": 1e400}', "1e400 is out of range"),
        ('{"x": ' + "[" * 2000 + "]" * 2000 + "}", "nested too deep"),
        ('{"x": ' + "[" * 100 + "]" * 100 + "}", "nested deeper than 64 levels"),
    ],
    ids=["nan", "infinity", "1e400", "2000-deep", "100-deep"],
)
def test_launch_config_that_cannot_be_stored_is_422_next_to_the_field(
    login, operator, config, message
):
    response = login(operator).post(LAUNCH, {"input": '{"week": 3}', "config": config})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    "raw, message",
    [
        ('{"week": NaN}', "NaN is not valid JSON"),
        ('{"week": 1e400}', "1e400 is out of range"),
        ("[" * 2000 + "]" * 2000, "nested too deep"),
    ],
)
def test_launch_input_that_cannot_be_stored_is_422(login, operator, raw, message):
    response = login(operator).post(LAUNCH, {"input": raw, "config": ""})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Run.objects.exists()


def _nul_urls(run: Run) -> list[str]:
    return [
        "/p/acme/runs/run_%00/",
        "/p/acme/runs/run_%00/events/?after=0",
        "/p/acme/runs/run_%00/logs.txt",
        f"/p/acme/tasks/{run.task_id}/?rerun=run_%00",
        "/p/acme/runs/?q=%00",
        "/p/acme/runs/?refresh=1&ids=run_%00",
        "/admin/runs/run/run_%00/change/",
        "/admin/runs/run/?q=%00",
        "/admin/runs/runevent/?run__id__exact=%00",
    ]


def test_a_nul_in_a_run_id_is_a_4xx(login, owner, project):
    """On PostgreSQL, which refuses NUL even in a comparison, each of these was a 500."""
    run = make_run(project, status="completed")
    owner.is_staff = owner.is_superuser = True
    owner.save()
    client = login(owner)
    for url in _nul_urls(run):
        response = client.get(url)
        assert 400 <= response.status_code < 500, (url, response.status_code)
    assert client.post("/p/acme/runs/run_%00/cancel/").status_code == 400
    assert client.get("/static/css/studio.css%00").status_code == 400
    response = client.post(LAUNCH, {"input": "{}", "config": "", "rerun_of": "run_\x00"})
    assert response.status_code == 302  # a rerun_of that names no run is ignored


@pytest.mark.parametrize("query", ["before=" + "9" * 30, "before=-1", "before=" + str(2**63)])
def test_an_event_position_no_event_can_have_is_400_on_the_run_page(login, viewer, project, query):
    run = make_run(project, status="completed")
    response = login(viewer).get(f"/p/acme/runs/{run.pk}/?{query}")
    assert response.status_code == 400


@pytest.mark.parametrize("query", ["after=" + "9" * 30, "after=-3"])
def test_an_event_position_no_event_can_have_is_400_on_the_poll(login, viewer, project, query):
    run = make_run(project, status="running")
    response = login(viewer).get(f"/p/acme/runs/{run.pk}/events/?{query}")
    assert response.status_code == 400


def test_the_poll_of_a_malformed_run_id_is_404(login, viewer):
    assert login(viewer).get("/p/acme/runs/not-a-run/events/").status_code == 404


@pytest.mark.parametrize("seats", ["1e999999999", "9" * 5000, "-1e400"])
def test_a_number_too_large_to_store_is_a_field_error_at_once(login, operator, seats):
    response = login(operator).post(URL, {**VALID, "input.seats": seats})
    assert response.status_code == 422
    assert "Enter a number below 1e300." in response.content.decode()
    assert not Run.objects.exists()
