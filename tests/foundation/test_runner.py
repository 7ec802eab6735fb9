"""Running one task definition: results, failures and output checks, shared by CLI and worker."""

from __future__ import annotations

import asyncio
import math
import threading

from runs.definitions import LocalContext, TaskDefinition
from runs.process.runner import execute


def definition(run, **fields) -> TaskDefinition:
    return TaskDefinition(id="example", run=run, name="Example", **fields)


def test_it_returns_the_output_as_stored_json():
    outcome = execute(definition(lambda ctx: {"when": (2025, 1)}), LocalContext())

    assert outcome.ok
    assert outcome.output == {"when": [2025, 1]}
    assert outcome.exit_code == 0
    assert outcome.duration_ms >= 0


def test_a_raising_task_fails_with_its_message_and_traceback():
    def run(ctx):
        raise LookupError("customer 42 not found")

    outcome = execute(definition(run), LocalContext())

    assert (outcome.ok, outcome.exit_code) == (False, 1)
    assert outcome.error["message"] == "customer 42 not found"
    assert outcome.error["code"] == "task_error"
    assert "LookupError: customer 42 not found" in outcome.error["detail"]


def test_an_exception_without_a_message_is_named_by_its_type():
    def run(ctx):
        raise TimeoutError

    assert execute(definition(run), LocalContext()).error["message"] == "TimeoutError"


def test_a_task_calling_sys_exit_fails_instead_of_ending_the_process():
    def run(ctx):
        raise SystemExit(3)

    outcome = execute(definition(run), LocalContext())

    assert not outcome.ok
    assert outcome.error["code"] == "task_exit"


def test_an_output_that_is_not_json_fails():
    outcome = execute(definition(lambda ctx: {"ids": {1, 2}}), LocalContext())

    assert not outcome.ok
    assert outcome.error["code"] == "output_not_serializable"
    assert "not JSON-serialisable" in outcome.error["message"]


def test_an_output_with_nan_fails():
    outcome = execute(definition(lambda ctx: {"ratio": math.nan}), LocalContext())

    assert outcome.error["code"] == "output_not_serializable"


def test_an_output_that_breaks_the_output_schema_fails_naming_the_field():
    schema = {
        "type": "object",
        "required": ["synced"],
        "properties": {"synced": {"type": "integer"}},
    }

    outcome = execute(definition(lambda ctx: {"synced": "3"}, output_schema=schema), LocalContext())

    assert not outcome.ok
    assert outcome.error["code"] == "output_invalid"
    assert "output.synced" in outcome.error["message"]
    assert outcome.output == {"synced": "3"}


def test_an_async_task_runs_even_where_an_event_loop_is_already_running():
    async def run(ctx):
        await asyncio.sleep(0)
        return {"n": ctx.input["n"]}

    definition = TaskDefinition(id="a", run=run, name="a")

    async def caller():  # e.g. a notebook cell, or Playwright's sync API in a test session
        return execute(definition, LocalContext(input={"n": 3}))

    # On a thread of its own, so the test does not depend on what else runs a loop here.
    box = {}
    thread = threading.Thread(target=lambda: box.update(outcome=asyncio.run(caller())))
    thread.start()
    thread.join(30)
    outcome = box["outcome"]
    assert (outcome.ok, outcome.output) == (True, {"n": 3})
