"""Crafted input against the REST API: each one a clear 4xx in the error shape, never a 500."""

from __future__ import annotations

import base64
import json

import pytest

from runs.models import Run

from .conftest import assert_error, make_run

pytestmark = pytest.mark.django_db


def _cursor(data: dict) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "raw",
    [
        '{"kind": "task", "owner": {"kind": "project", "id": "%s"}, '
        '"request": {"target": "task:sync-data", "input": {"limit": 1e400}}}',
        '{"kind": "task", "owner": {"kind": "project", "id": "%s"}, '
        '"request": {"target": "task:sync-data", "config": {"x": -1e400}}}',
        '{"kind": "task", "owner": {"kind": "project", "id": "%s"}, '
        '"request": {"target": "task:sync-data", "timeout_seconds": 1e400}}',
    ],
    ids=["input", "config", "timeout"],
)
def test_a_number_too_large_for_a_float_is_400(api, project, raw):
    response = api.post("/runs", raw=raw % project.id)
    error = assert_error(response, 400, "malformed_json")
    assert "1e400" in error["message"]
    assert not Run.objects.exists()


def test_a_body_nested_too_deep_to_parse_is_400(api, project):
    deep = "[" * 5000 + "]" * 5000
    raw = (
        f'{{"kind": "task", "owner": {{"kind": "project", "id": "{project.id}"}}, '
        f'"request": {{"target": "task:sync-data", "config": {{"x": {deep}}}}}}}'
    )
    response = api.post("/runs", raw=raw)
    error = assert_error(response, 400, "malformed_json")
    assert "nested too deep" in error["message"]
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    "stamp",
    ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+00:00"],
)
def test_a_cursor_with_an_out_of_range_timestamp_is_422(api, project, stamp):
    make_run(project)
    cursor = _cursor({"d": "next", "t": stamp, "i": "run_" + "0" * 32})
    response = api.get(f"/projects/{project.slug}/runs", {"cursor": cursor})
    if response.status_code == 200:
        # UTC itself is in range: a valid (if odd) position, answered normally.
        assert stamp.endswith("+00:00")
        return
    error = assert_error(response, 422, "invalid_cursor")
    assert error["detail"][0]["field"] == "cursor"


def test_a_nul_in_a_run_id_or_cursor_is_a_4xx(api, project):
    """PostgreSQL refuses NUL even in a comparison: answered before any query, on any database."""
    for path in ("/runs/run_%00", "/runs/run_%00/events"):
        assert_error(api.get(path), 404, "not_found")
    assert_error(api.post("/runs/run_%00/cancel"), 404, "not_found")
    error = assert_error(api.get("/projects/acme/runs?cursor=%00"), 422, "validation_error")
    assert error["detail"][0]["field"] == "cursor"


def test_an_events_cursor_past_the_largest_id_is_422(api, project):
    run = make_run(project)
    cursor = _cursor({"after": 2**70})
    response = api.get(f"/runs/{run.pk}/events", {"cursor": cursor})
    assert_error(response, 422, "invalid_cursor")
