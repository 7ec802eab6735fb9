"""Every response shape of the runs API against the Veryfront Runs schema (veryfront@0.1.1031).

The schema is written out in tests/api/veryfront_schema.py from what the SDK's `runs` module
declares. Runs are brought into each state the way the engine leaves them: created through the
service, claimed and settled through runs.lifecycle as a worker does (with the fields and events
a supervisor hands it), and lost runs by the sweeper itself. tests/api/test_contract_worker.py
checks the same shapes on runs a real worker ran.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from runs import lifecycle, service
from runs.api.schemas import run_to_wire
from runs.models import Run
from runs.worker import sweeper

from . import veryfront_schema as vf

pytestmark = pytest.mark.django_db

STUDIO_KINDS = ("task", "workflow")
STUDIO_TRIGGERS = ("manual", "schedule", "webhook", "api")


# --- What a conforming response is ------------------------------------------------------------


def assert_conforms(body, schema: vf.T) -> None:
    found = vf.problems(body, schema)
    assert not found, "\n".join(found)


def assert_studio_run(run: dict) -> None:
    """Studio's narrowing of the Veryfront Run: closed enums, real timestamps, a real error."""
    assert run["kind"] in STUDIO_KINDS
    assert run["trigger_kind"] in STUDIO_TRIGGERS
    assert run["owner"]["kind"] == "project"
    assert run["runtime_target_kind"] in (None, "main_branch")
    for key in ("created_at", "updated_at", "started_at", "completed_at"):
        if run[key] is not None:
            assert datetime.fromisoformat(run[key]).tzinfo is not None, key
    if run["error"] is not None:
        assert isinstance(run["error"]["code"], str) and run["error"]["code"]
        assert isinstance(run["error"]["message"], str)


def check_run(run: dict) -> None:
    assert_conforms(run, vf.RUN)
    assert_studio_run(run)


# --- Runs in each state -----------------------------------------------------------------------


def _create(project, **kwargs) -> Run:
    kwargs.setdefault("target", "task:sync-data")
    return service.create_run(
        project, trigger_kind=Run.Trigger.API, created_by="token:ci", **kwargs
    ).run


WORKER = "contract-worker"


def _start(run: Run, *, ago: float = 2.0) -> Run:
    """pending -> running: a worker's claim, `ago` seconds back (its last heartbeat then)."""
    claimed = lifecycle.claim(run.pk, worker=WORKER, now=timezone.now() - timedelta(seconds=ago))
    assert claimed is not None
    return claimed


def _attempt(output: str = "contacting upstream...") -> dict:
    """What a supervisor hands the lifecycle at the end of an attempt: fields and events."""
    now = timezone.now()
    return {
        "fields": {"logs": output + "\n", "exit_code": 0, "duration_ms": 1500},
        "events": [("run.started", {"attempt": 1}, now), ("log", {"line": output}, now)],
    }


def completed(project) -> Run:
    run = _start(_create(project, input={"limit": 2}))
    assert lifecycle.complete(run, {"synced": 2, "skipped": 0}, worker=WORKER, **_attempt())
    run.refresh_from_db()
    return run


def failed(project) -> Run:
    run = _start(_create(project, target="task:failing-task"))
    attempt = _attempt()
    attempt["fields"]["exit_code"] = 1
    err = lifecycle.error("cannot sync", "task_error", "Traceback ...")
    assert lifecycle.fail(run, err, worker=WORKER, **attempt)
    run.refresh_from_db()
    return run


def cancelled(project) -> Run:
    run = _create(project)
    assert service.cancel_run(run, reason="cancelled by token:ci")[0]
    run.refresh_from_db()
    return run


def cancelled_while_running(project) -> Run:
    run = _start(_create(project, target="task:long-running"))
    assert service.cancel_run(run, reason="cancelled by token:ci")[0]
    output = {"processed": 1, "stopped_early": True}
    assert lifecycle.acknowledge_cancel(
        run, "cancelled by token:ci", worker=WORKER, output=output, **_attempt()
    )
    run.refresh_from_db()
    return run


def timed_out(project) -> Run:
    run = _start(_create(project, target="task:long-running", timeout_seconds=1))
    attempt = _attempt()
    attempt["fields"]["exit_code"] = 137
    err = lifecycle.error("the run exceeded its timeout of 1s and was stopped", "timeout")
    assert lifecycle.fail(run, err, worker=WORKER, **attempt)
    run.refresh_from_db()
    return run


def retried(project) -> Run:
    run = _start(_create(project, target="task:failing-task", backoff_limit=2))
    err = lifecycle.error("cannot sync", "task_error")
    outcome = lifecycle.retry_later(run, err, worker=WORKER, delay=30.0, **_attempt())
    assert outcome == "retrying"
    run.refresh_from_db()
    return run


def lost(project, settings) -> Run:
    """A run whose worker stopped heart-beating, settled by the sweeper's own code."""
    run = _start(
        _create(project, target="task:long-running"),
        ago=settings.STUDIO_WORKER_LOST_SECONDS + 60,
    )
    assert sweeper.sweep()["lost"] == 1
    run.refresh_from_db()
    return run


def lost_and_retried(project, settings) -> Run:
    run = _start(
        _create(project, target="task:long-running", backoff_limit=1),
        ago=settings.STUDIO_WORKER_LOST_SECONDS + 60,
    )
    assert sweeper.sweep()["lost"] == 1
    run.refresh_from_db()
    return run


STATES = {
    "completed": (completed, "completed"),
    "failed": (failed, "failed"),
    "cancelled": (cancelled, "cancelled"),
    "cancelled_while_running": (cancelled_while_running, "cancelled"),
    "timed_out": (timed_out, "failed"),
    "retried": (retried, "waiting"),
    "lost": (lost, "failed"),
    "lost_and_retried": (lost_and_retried, "waiting"),
}


@pytest.fixture(params=list(STATES))
def settled(request, project, settings) -> Run:
    make, status = STATES[request.param]
    run = make(project, settings) if make in (lost, lost_and_retried) else make(project)
    assert run.status == status, (request.param, run.status)
    return run


# --- Created and duplicate --------------------------------------------------------------------


def test_created_conforms_and_has_no_duplicate_key(api, task_body):
    body = api.post("/runs", {**task_body(), "public_id": "nightly-1"}).json()
    assert_conforms(body, vf.CREATE_RUN_RESPONSE)
    assert "duplicate" not in body
    check_run(body["run"])
    assert body["run"]["status"] == "pending" and body["run"]["error"] is None


def test_duplicate_conforms_with_duplicate_true(api, task_body):
    api.post("/runs", {**task_body(), "public_id": "nightly-1"})
    body = api.post("/runs", {**task_body(), "public_id": "nightly-1"}).json()
    assert_conforms(body, vf.CREATE_RUN_RESPONSE)
    assert body["duplicate"] is True
    check_run(body["run"])


def test_created_with_every_optional_field_conforms(api, task_body, project):
    parent = _create(project)
    body = {
        **task_body(
            name="Sync",
            input={"limit": 1},
            config={"batchSize": 5},
            batch_id="b-1",
            timeout_seconds=60,
            backoff_limit=1,
            start_mode="immediate",
            runtime_target_kind="main_branch",
            runtime_target_environment_id=None,
            runtime_target_branch_id=None,
        ),
        "public_id": "full-1",
        "parent_run_id": parent.pk,
    }
    response = api.post("/runs", body).json()
    assert_conforms(response, vf.CREATE_RUN_RESPONSE)
    run = response["run"]
    check_run(run)
    assert run["parent_run_id"] == parent.pk and run["root_run_id"] == parent.pk
    assert run["runtime_target_kind"] == "main_branch" and run["start_mode"] == "immediate"


def test_a_rerun_conforms(api, project):
    run = completed(project)
    body = api.post(f"/runs/{run.pk}/rerun").json()
    assert_conforms(body, vf.CREATE_RUN_RESPONSE)
    assert "duplicate" not in body
    check_run(body["run"])
    assert body["run"]["metadata"] == {"rerun_of": run.pk}


# --- Every read, in every state ---------------------------------------------------------------


def test_get_conforms(api, settled):
    body = api.get(f"/runs/{settled.pk}").json()
    assert_conforms(body, vf.RUN)
    assert_studio_run(body)
    assert body["status"] == settled.status


@pytest.mark.parametrize("fields", [None, "summary"])
def test_list_page_conforms(api, settled, fields):
    body = api.get("/projects/acme/runs", {"fields": fields} if fields else {}).json()
    assert_conforms(body, vf.RUN_LIST)
    assert [r["run_id"] for r in body["data"]] == [settled.pk]
    for run in body["data"]:
        assert_studio_run(run)
    assert body["page_info"]["first"] is None


def test_events_page_conforms(api, settled):
    body = api.get(f"/runs/{settled.pk}/events", {"limit": 1}).json()
    assert_conforms(body, vf.RUN_EVENT_LIST)
    assert body["data"][0]["event_type"] == "run.created"
    assert body["page_info"]["first"] is None
    later = api.get(
        f"/runs/{settled.pk}/events", {"cursor": body["page_info"]["next"], "limit": 1000}
    ).json()
    assert_conforms(later, vf.RUN_EVENT_LIST)
    assert later["page_info"]["next"] is None


def test_cancel_conforms(api, settled):
    body = api.post(f"/runs/{settled.pk}/cancel").json()
    assert_conforms(body, vf.CANCEL_RUN_RESPONSE)
    assert_studio_run(body["run"])
    # Only a run waiting for its retry is still there to cancel.
    assert body["cancelled"] is (settled.status == Run.Status.WAITING)
    if body["cancelled"]:
        assert body["run"]["status"] == "cancelled"
        assert body["run"]["error"]["code"] == "cancelled"


def test_cancelling_a_running_run_conforms(api, project):
    run = _start(_create(project, target="task:long-running"))
    body = api.post(f"/runs/{run.pk}/cancel").json()
    assert_conforms(body, vf.CANCEL_RUN_RESPONSE)
    assert body["cancelled"] is True and body["run"]["status"] == "running"


def test_a_list_page_with_cursors_conforms(api, project):
    for _ in range(3):
        _create(project)
    first = api.get("/projects/acme/runs", {"limit": 1}).json()
    middle = api.get(
        "/projects/acme/runs", {"limit": 1, "cursor": first["page_info"]["next"]}
    ).json()
    for page in (first, middle):
        assert_conforms(page, vf.RUN_LIST)
    assert middle["page_info"]["self"] == first["page_info"]["next"]
    assert middle["page_info"]["next"] and middle["page_info"]["prev"]


def test_an_empty_list_conforms(api, project):
    body = api.get("/projects/acme/runs").json()
    assert_conforms(body, vf.RUN_LIST)
    assert body == {
        "data": [],
        "page_info": {"self": None, "first": None, "next": None, "prev": None},
    }


def test_a_legacy_error_without_a_code_still_conforms(api, project):
    run = failed(project)
    Run.objects.filter(pk=run.pk).update(error={"message": "old", "code": None})
    assert_conforms(api.get(f"/runs/{run.pk}").json(), vf.RUN)


# --- The checker itself refuses what the SDK refuses -------------------------------------------


def _wire(project) -> dict:

    return json.loads(json.dumps(run_to_wire(failed(project)), cls=DjangoJSONEncoder))


@pytest.mark.parametrize(
    "change, rule",
    [
        (lambda r: r["error"].update(code=None), "$.error.code: must not be null"),
        (lambda r: r["error"].update(message=None), "$.error.message: must not be null"),
        (lambda r: r.update(kind="job"), "$.kind: must be one of"),
        (lambda r: r.update(trigger_kind="rerun"), "$.trigger_kind: must be one of"),
        (lambda r: r.update(duration_ms=1.5), "$.duration_ms: must be an integer"),
        (lambda r: r.update(exit_code=True), "$.exit_code: must be a number"),
        (lambda r: r.pop("logs"), "$.logs: is missing"),
        (lambda r: r.update(colour="red"), "$.colour: is not in the schema"),
        (lambda r: r.update(artifacts=None), "$.artifacts: must not be null"),
        (lambda r: r.update(runtime_target_kind="mars"), "$.runtime_target_kind: must be one of"),
    ],
)
def test_the_checker_refuses_what_the_sdk_refuses(project, change, rule):
    run = _wire(project)
    assert vf.problems(run, vf.RUN) == []
    change(run)
    assert any(p.startswith(rule) for p in vf.problems(run, vf.RUN)), vf.problems(run, vf.RUN)


def test_the_checker_refuses_a_null_duplicate_and_a_first_cursor():
    assert vf.problems({"accepted": True, "duplicate": None, "run": None}, vf.CREATE_RUN_RESPONSE)
    page = {"data": [], "page_info": {"self": None, "first": "abc", "next": None, "prev": None}}
    assert vf.problems(page, vf.RUN_LIST) == ["$.page_info.first: must be null, got 'abc'"]
