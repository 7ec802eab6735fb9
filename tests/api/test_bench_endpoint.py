"""The benchmark's bare endpoint exists only in the benchmark's own server."""

from __future__ import annotations

import pytest

from .conftest import assert_error

pytestmark = pytest.mark.django_db


def test_the_bare_bench_endpoint_is_not_served_normally(api):
    assert_error(api.client.get("/api/_bench/bare"), 404, "not_found")
    assert_error(api.get("/_bench/bare"), 404, "not_found")


def test_the_openapi_document_does_not_list_it(api):
    assert "_bench" not in api.client.get("/api/openapi.json").content.decode()
