"""A checked token is remembered for STUDIO_TOKEN_CACHE_SECONDS per process (runs/api/tokens.py):
how quickly a revoked or changed token stops working."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from runs.models import ApiToken

from .conftest import assert_error, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(project):
    return make_run(project)


def test_a_token_revoked_through_the_model_stops_working_at_once(api, run):
    assert api.get(f"/runs/{run.pk}").status_code == 200  # checked, and remembered
    ApiToken.objects.get().revoke()
    assert_error(api.get(f"/runs/{run.pk}"), 401, "unauthorized")


def test_a_token_revoked_by_another_process_stops_working_within_the_cache_time(api, run, settings):
    settings.STUDIO_TOKEN_CACHE_SECONDS = 0.5
    assert api.get(f"/runs/{run.pk}").status_code == 200
    # Another process revoking it: this one gets no signal, only the database changes.
    ApiToken.objects.update(revoked_at=timezone.now())
    revoked_at = time.monotonic()
    while api.get(f"/runs/{run.pk}").status_code != 401:
        assert time.monotonic() - revoked_at < 5, "the revoked token still works"
        time.sleep(0.05)
    assert_error(api.get(f"/runs/{run.pk}"), 401, "unauthorized")


def test_with_no_cache_time_every_request_reads_the_token(api, run, settings):
    settings.STUDIO_TOKEN_CACHE_SECONDS = 0
    assert api.get(f"/runs/{run.pk}").status_code == 200
    ApiToken.objects.update(revoked_at=timezone.now())
    assert_error(api.get(f"/runs/{run.pk}"), 401, "unauthorized")


def test_a_token_made_read_only_and_saved_refuses_writes_at_once(api, run):
    assert api.post(f"/runs/{run.pk}/cancel").status_code == 200
    token = ApiToken.objects.get()
    token.scope = ApiToken.Scope.READ
    token.save()  # as the admin's change form does
    assert_error(api.post(f"/runs/{run.pk}/rerun"), 403, "read_only_token")


def test_a_deleted_token_stops_working_at_once(api, run):
    assert api.get(f"/runs/{run.pk}").status_code == 200
    ApiToken.objects.get().delete()
    assert_error(api.get(f"/runs/{run.pk}"), 401, "unauthorized")


def test_an_unknown_token_is_refused_every_time(api, run):
    for _ in range(3):
        assert_error(
            api.get(f"/runs/{run.pk}", token="stu_ffffffffxxxxxxxxxxxxxxxxxxxx"),
            401,
            "unauthorized",
        )
