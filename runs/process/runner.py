"""Run one task definition with a context: the code path shared by the CLI and the worker child.

It calls `run(ctx)` (awaiting it when it is `async def`), checks that the result can be stored as
JSON, and turns any exception into a structured error. Nothing here knows about the database.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from ..definitions import TaskContext, TaskDefinition


@dataclass
class Outcome:
    ok: bool
    output: Any = None
    error: dict | None = None
    duration_ms: int = 0
    exception: BaseException | None = None  # what the task raised (the sandbox maps limits)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def error_dict(message: str, code: str, detail: str | None = None) -> dict:
    return {"message": message, "code": code, "detail": detail}


def _run_coroutine(coro):
    """Run an async task's coroutine to completion, even where this thread already runs a loop
    (a notebook, a test driving Playwright's sync API): then on a thread of its own."""
    import asyncio  # here, not at the top: the fork server stays smaller without it

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict = {}

    def target():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="studio-async-task")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def execute(definition: TaskDefinition, ctx: TaskContext, *, check_output: bool = True) -> Outcome:
    """Run the task. `check_output=False` leaves the output_schema check to the caller: a run's
    worker checks it, outside the task's process, where the task's code cannot interfere."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        result = definition.run(ctx)
        if inspect.iscoroutine(result):
            result = _run_coroutine(result)
    except BaseException as exc:  # noqa: BLE001 - a task's SystemExit is a failure, not ours
        if isinstance(exc, KeyboardInterrupt):
            raise
        message = str(exc) or type(exc).__name__
        return Outcome(
            ok=False,
            error=error_dict(
                message,
                "task_error" if not isinstance(exc, SystemExit) else "task_exit",
                traceback.format_exc(),
            ),
            duration_ms=elapsed(),
            exception=exc,
        )
    try:
        output = json.loads(json.dumps(result, allow_nan=False))
    except (TypeError, ValueError) as exc:
        return Outcome(
            ok=False,
            error=error_dict(
                f"the task returned a value that is not JSON-serialisable: {exc}",
                "output_not_serializable",
                f"returned {type(result).__name__}: {result!r:.500}",
            ),
            duration_ms=elapsed(),
            exception=exc,
        )
    error = output_error(definition, output) if check_output else None
    if error is not None:
        return Outcome(ok=False, output=output, error=error, duration_ms=elapsed())
    return Outcome(ok=True, output=output, duration_ms=elapsed())


def output_error(definition: TaskDefinition, output: Any) -> dict | None:
    """The error of an output that does not match the task's output_schema, else None."""
    if not definition.output_schema:
        return None
    from ..validation import schema_errors

    problems = schema_errors(definition.output_schema, output, prefix="output")
    if not problems:
        return None
    return error_dict(
        f"the task's output does not match its output_schema: {problems[0]}",
        "output_invalid",
        "\n".join(str(p) for p in problems),
    )
