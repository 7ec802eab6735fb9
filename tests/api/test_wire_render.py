"""The hot routes answer with pre-built dicts (runs.api.wire_response) instead of letting ninja
validate them against the response schema: the bytes must be the ones ninja would have sent."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from ninja.responses import NinjaJSONEncoder

from runs.api import wire_response
from runs.api.schemas import AcceptedOut, EventPage, RunOut, event_to_wire, run_to_wire
from runs.models import Run, RunEvent

from .conftest import make_run

pytestmark = pytest.mark.django_db

MOMENT = dt.datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)


def ninja_bytes(schema, data, **dump) -> bytes:
    """What ninja sends for `data` under a route declaring `schema`."""
    model = schema.model_validate(data)
    return json.dumps(model.model_dump(by_alias=False, **dump), cls=NinjaJSONEncoder).encode()


@pytest.fixture
def runs(project):
    plain = make_run(project)
    finished = make_run(
        project,
        status=Run.Status.FAILED,
        input={"n": 1, "nested": {"list": [1, 2.5, None, "é"]}},
        config={"k": "v"},
        output=[1, {"a": None}],
        error={"message": "boom", "code": "task_failed", "detail": {"line": 3}},
        metadata={"tag": "x"},
        logs="line 1\nline 2\n",
        artifacts=[{"name": "a.txt"}],
        duration_ms=1234,
        exit_code=1,
        timeout_seconds=30,
        backoff_limit=2,
        start_mode="immediate",
        runtime_target_kind="main_branch",
        batch_id="b1",
        public_id="p1",
        created_by="token:ci",
        trigger_kind=Run.Trigger.API,
        started_at=MOMENT,
        completed_at=MOMENT + dt.timedelta(seconds=1, microseconds=1),
    )
    child = make_run(project, parent_run=finished, root_run=finished, error="a bare string")
    # As the service hands it over right after the insert: choices still enum members.
    fresh = make_run(project, kind=Run.Kind.TASK, status=Run.Status.PENDING)
    return [plain, finished, child, fresh]


def test_a_run_renders_as_ninja_renders_it(runs):
    for run in runs:
        data = run_to_wire(run)
        assert wire_response(data).content == ninja_bytes(RunOut, data)


def test_an_accepted_run_renders_as_ninja_renders_it(runs):
    for run in runs:
        for body in (
            {"accepted": True, "run": run_to_wire(run)},
            {"accepted": True, "duplicate": True, "run": run_to_wire(run)},
        ):
            expected = ninja_bytes(AcceptedOut, body, exclude_unset=True)
            assert wire_response(body, 202).content == expected


def test_an_events_page_renders_as_ninja_renders_it(runs):
    run = runs[1]
    RunEvent.objects.create(run=run, event_type="log", payload={"line": "hi", "stream": "stdout"})
    RunEvent.objects.create(run=run, event_type="run.completed", payload={"output": [1.5]})
    events = [event_to_wire(e) for e in RunEvent.objects.filter(run=run).order_by("id")]
    for data in (events, []):
        page = {
            "data": data,
            "page_info": {"self": None, "first": None, "next": "e_1", "prev": None},
        }
        assert wire_response(page).content == ninja_bytes(EventPage, page)


def test_the_routes_send_those_bytes(api, runs):
    run = runs[1]
    response = api.get(f"/runs/{run.pk}")
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.content == ninja_bytes(RunOut, run_to_wire(Run.objects.get(pk=run.pk)))
