from __future__ import annotations

import re

import pytest

from runs.models import Run

from .conftest import make_run

pytestmark = pytest.mark.django_db
URL = "/p/acme/tasks/onboard-customer/"

VALID = {
    "input.company": "Globex",
    "input.email": "billing@globex.example",
    "input.plan": "pro",
    "input.seats": "12",
    "input.start_date": "2025-03-01",
    "input.tags.__len": "2",
    "input.tags.0": "vip",
    "input.tags.1": "",
    "input.address.street": "",
    "input.address.city": "",
    "input.address.country": "",
    "input.notes": "",
    "config": '{"region": "eu"}',
    "timeout_seconds": "",
    "backoff_limit": "",
}


def field_html(html: str, name: str) -> str:
    match = re.search(rf'<(input|select|textarea)[^>]*name="{re.escape(name)}"[^>]*>', html)
    assert match, f"no control named {name}"
    return match.group(0)


def test_it_builds_the_form_from_input_schema(login, operator):
    html = login(operator).get(URL).content.decode()
    company = field_html(html, "input.company")
    assert 'minlength="2"' in company and 'maxlength="80"' in company and "required" in company
    assert 'type="email"' in field_html(html, "input.email")
    assert 'type="date"' in field_html(html, "input.start_date")
    seats = field_html(html, "input.seats")
    assert (
        'type="number"' in seats
        and 'min="1"' in seats
        and 'max="500"' in seats
        and 'value="5"' in seats
    )
    assert 'type="radio"' in field_html(html, "input.plan")  # four options: radios
    assert 'value="team" checked' in html  # the default
    assert "checked" in field_html(html, "input.send_welcome_email")
    assert "<textarea" in field_html(html, "input.notes")
    country = field_html(html, "input.address.country")
    assert 'pattern="[A-Z]{2}"' in country
    assert "required" not in country  # address itself is optional
    assert "How many people will sign in" in html  # description as help text
    assert '<label for="f-input-company">Company name' in html


def test_valid_submit_creates_a_typed_run_and_lands_on_it(
    login, operator, project, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(operator).post(URL, VALID)
    run = Run.objects.get(project=project)
    assert response.status_code == 302
    assert response["Location"] == f"/p/acme/runs/{run.pk}/"
    assert run.input == {
        "company": "Globex",
        "email": "billing@globex.example",
        "plan": "pro",
        "seats": 12,
        "start_date": "2025-03-01",
        "send_welcome_email": False,  # unchecked box
        "tags": ["vip"],  # the empty row is left out
    }
    assert "address" not in run.input and "notes" not in run.input  # empty optional fields left out
    assert run.config == {"region": "eu"}
    assert run.created_by == "oscar"
    assert run.trigger_kind == "manual"
    assert enqueued == [run.pk]


def test_errors_appear_next_to_their_fields_and_values_are_kept(login, operator, project):
    data = {**VALID, "input.company": "G", "input.address.city": "Berlin", "input.seats": "12"}
    response = login(operator).post(URL, data)
    html = response.content.decode()
    assert response.status_code == 422
    assert not Run.objects.exists()
    assert "The run was not created" in html
    company_block = html.split('id="f-input-company-errors"')[1][:200]
    assert "Must be at least 2 characters." in company_block
    country_block = html.split('id="f-input-address-country-errors"')[1][:200]
    assert "This field is required." in country_block
    assert 'value="Berlin"' in field_html(html, "input.address.city")
    assert 'value="12"' in field_html(html, "input.seats")
    assert 'value="vip"' in field_html(html, "input.tags.0")
    assert 'aria-invalid="true"' in field_html(html, "input.company")


def test_a_number_that_is_not_a_number_is_an_error_not_a_crash(login, operator):
    response = login(operator).post(URL, {**VALID, "input.seats": "many"})
    assert response.status_code == 422
    assert "Enter a whole number." in response.content.decode()
    assert not Run.objects.exists()


def test_bad_config_and_options_are_reported(login, operator):
    response = login(operator).post(URL, {**VALID, "config": "[1, 2", "timeout_seconds": "0"})
    html = response.content.decode()
    assert response.status_code == 422
    assert "Not valid JSON" in html
    assert "greater than or equal to 1" in html
    assert not Run.objects.exists()


def test_config_must_be_an_object(login, operator):
    response = login(operator).post(URL, {**VALID, "config": "[1]"})
    assert "Must be a JSON object" in response.content.decode()


def test_timeout_and_retries_are_passed_on(login, operator, project):
    login(operator).post(URL, {**VALID, "timeout_seconds": "90", "backoff_limit": "2"})
    run = Run.objects.get(project=project)
    assert (run.timeout_seconds, run.backoff_limit) == (90, 2)


def test_add_row_redraws_the_form_without_creating_a_run(login, operator):
    client = login(operator)
    response = client.post(URL, {**VALID, "_action": "add:input.tags"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="input.tags.2"' in html
    assert 'value="Globex"' in html
    assert not Run.objects.exists()
    # With htmx only the input fields come back.
    partial = client.post(
        URL, {**VALID, "_action": "add:input.tags"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert partial.lstrip().startswith('<div id="input-fields"')
    assert "<html" not in partial


def test_remove_row_renumbers_the_rest(login, operator):
    data = {
        **VALID,
        "input.tags.__len": "3",
        "input.tags.0": "a",
        "input.tags.1": "b",
        "input.tags.2": "c",
    }
    html = login(operator).post(URL, {**data, "_action": "remove:input.tags.0"}).content.decode()
    assert 'value="b"' in field_html(html, "input.tags.0")
    assert 'value="c"' in field_html(html, "input.tags.1")
    assert 'name="input.tags.2"' not in html


def test_rerun_opens_the_form_prefilled(login, operator, project):
    run = make_run(
        project,
        status="completed",
        target="task:onboard-customer",
        input={
            "company": "Initech",
            "email": "a@initech.example",
            "plan": "enterprise",
            "start_date": "2025-01-02",
            "seats": 40,
            "tags": ["x", "y"],
        },
        config={"dry_run": True},
    )
    html = login(operator).get(f"{URL}?rerun={run.pk}").content.decode()
    assert "Re-running" in html
    assert 'value="Initech"' in field_html(html, "input.company")
    assert 'value="40"' in field_html(html, "input.seats")
    assert 'value="enterprise" checked' in html
    assert 'value="y"' in field_html(html, "input.tags.1")
    assert "&quot;dry_run&quot;: true" in html


def test_rerun_of_another_projects_run_is_404(login, operator, other_project):
    theirs = make_run(
        other_project,
        status="completed",
        target="task:onboard-customer",
        input={
            "company": "Secret",
            "email": "s@x.example",
            "plan": "pro",
            "start_date": "2025-01-01",
        },
    )
    assert login(operator).get(f"{URL}?rerun={theirs.pk}").status_code == 404


def test_unknown_task_is_404(login, operator):
    assert login(operator).get("/p/acme/tasks/nope/").status_code == 404


def test_viewer_sees_the_form_disabled(login, viewer):
    html = login(viewer).get(URL).content.decode()
    assert "launching runs needs the operator role" in html
    assert '<fieldset class="form-body" disabled>' in html


def test_task_without_schema_gets_a_json_editor(login, operator, project):
    html = login(operator).get("/p/acme/tasks/reports-weekly/").content.decode()
    assert '<textarea id="f-input" name="input"' in html
    response = login(operator).post(
        "/p/acme/tasks/reports-weekly/", {"input": '{"week": 3}', "config": ""}
    )
    assert response.status_code == 302
    assert Run.objects.get(project=project).input == {"week": 3}


def test_a_task_without_input_schema_requires_nothing(login, operator, project):
    client = login(operator)
    html = client.get("/p/acme/tasks/reports-weekly/").content.decode()
    form = html.split('id="launch-form"')[1]
    assert 'class="req"' not in form and "required</span>" not in form
    assert form.count(">Input<") == 1 and "Any JSON object (optional)" in form
    response = client.post("/p/acme/tasks/reports-weekly/", {"input": ""})
    assert response.status_code == 302
    assert Run.objects.get(project=project).input == {}
