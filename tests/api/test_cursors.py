"""Crafted cursors on the API's lists: a clean 422, never a 500."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from runs.models.paging import Position, event_cursor, run_cursor

from .conftest import make_run

pytestmark = pytest.mark.django_db

RUN = "run_" + "f" * 32


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _b64(f"n~99999999999999999999~{RUN}"),  # beyond year 9999
        _b64(f"p~-99999999999999999~{RUN}"),  # before year 1
        _b64(f"n~{'9' * 4400}~{RUN}"),  # past int()'s digit limit (and overlong)
        _b64(f"x~1~{RUN}"),
        _b64("n~1~run_1"),
        "A" * 254,  # within the parameter's length limit, beyond any cursor's
        "A" * 5000,
        "\u00e9\u00e9\u00e9",
    ],
)
def test_out_of_range_and_overlong_run_cursors_get_a_clean_422(api, project, cursor):
    response = api.get("/projects/acme/runs", {"cursor": cursor})
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] in ("invalid_cursor", "validation_error")
    assert response.json()["error"]["detail"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    "cursor",
    [
        _b64(f"e~{2**63}"),
        _b64("e~-1"),
        _b64("e~" + "9" * 5000),
        run_cursor("next", Position(datetime(2024, 1, 1, tzinfo=UTC), RUN)),
        "A" * 5000,
    ],
)
def test_crafted_event_cursors_get_a_clean_422(api, project, cursor):
    run = make_run(project)
    response = api.get(f"/runs/{run.pk}/events", {"cursor": cursor})
    assert response.status_code == 422, response.content


def test_cursors_at_the_edges_of_time_are_honoured(api, project):
    make_run(project)
    make_run(project)
    latest = Position(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), RUN)
    body = api.get("/projects/acme/runs", {"cursor": run_cursor("next", latest)}).json()
    assert len(body["data"]) == 2
    earliest = Position(datetime(1, 1, 1, tzinfo=UTC), RUN)
    body = api.get("/projects/acme/runs", {"cursor": run_cursor("prev", earliest)}).json()
    assert len(body["data"]) == 2


def test_an_events_cursor_is_not_a_runs_cursor(api, project):
    response = api.get("/projects/acme/runs", {"cursor": event_cursor(1)})
    assert response.json()["error"]["code"] == "invalid_cursor"
