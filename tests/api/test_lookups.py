"""The kept cursor under the hot reads (runs.api.lookups) and creates (runs.compiled.execute_kept):
answers stay right when the connection behind it is replaced or dies, and Django's query tools
still see each statement."""

from __future__ import annotations

import pytest
from django.db import connection

from runs.models import Run

from .conftest import assert_error, make_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def warm(api, project):
    """A run, read once so that this thread keeps a cursor (and the token is remembered)."""
    run = make_run(project, input={"limit": 1})
    first = api.get(f"/runs/{run.pk}")
    assert first.status_code == 200
    return run, first.content


def test_a_read_after_the_connection_was_replaced_answers_the_same(api, warm):
    run, before = warm
    connection.close()  # CONN_MAX_AGE ran out, or a health check failed: a new connection next
    again = api.get(f"/runs/{run.pk}")
    assert again.status_code == 200
    assert again.content == before
    assert api.get(f"/runs/{run.pk}/events", {"after_event_id": 0}).status_code == 200


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a lost server is PostgreSQL's")
def test_a_connection_lost_within_the_checked_second_answers_503_then_recovers(api, warm):
    run, before = warm
    enabled = connection.health_check_enabled
    connection.health_check_enabled = False  # as in the second after a ping that succeeded
    try:
        connection.connection.close()  # the server went away under the kept cursor
        response = api.get(f"/runs/{run.pk}")
        assert_error(response, 503, "service_unavailable")
        assert response["Retry-After"]
        assert connection.errors_occurred  # so Django drops the connection after the request
    finally:
        connection.health_check_enabled = enabled
        connection.close()
    assert api.get(f"/runs/{run.pk}").content == before


def test_query_tools_see_the_read(api, warm, django_assert_num_queries):
    run, before = warm
    with django_assert_num_queries(1) as captured:
        assert api.get(f"/runs/{run.pk}").content == before
    assert run.pk in captured.captured_queries[0]["sql"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a lost server is PostgreSQL's")
def test_a_create_on_a_connection_lost_within_the_checked_second_answers_503_then_recovers(
    api, warm, task_body
):
    assert api.post("/runs", task_body()).status_code == 202  # the create's cursor is kept too
    count = Run.objects.count()
    enabled = connection.health_check_enabled
    connection.health_check_enabled = False  # as in the second after a ping that succeeded
    try:
        connection.connection.close()  # the server went away under the kept cursor
        response = api.post("/runs", task_body())
        assert_error(response, 503, "service_unavailable")
        assert connection.errors_occurred
    finally:
        connection.health_check_enabled = enabled
        connection.close()
    assert Run.objects.count() == count
    assert api.post("/runs", task_body()).status_code == 202
