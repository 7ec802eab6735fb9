"""Running a workflow in this process, for `manage.py workflow`: steps one after another in
graph order, task steps through the same runner as `manage.py task`. Same graph semantics as the
orchestrator (trigger rules, when/unless, references, output template), no database."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from django.conf import settings
from django.utils.dateparse import parse_datetime

from ..definitions import Discovery, LocalContext, filtered_env
from ..process.runner import execute
from ..validation import apply_defaults, schema_errors
from ..workflows.graph import MissingReference, describe_ref, resolve, rule_met
from .discovery import WorkflowDefinition, WorkflowDiscovery


class LocalWorkflowError(Exception):
    pass


class LocalRunner:
    def __init__(
        self,
        tasks: Discovery,
        workflows: WorkflowDiscovery,
        *,
        out: TextIO,
        ask: Callable[[str], str] | None,
        project_id: str | None = None,
    ):
        self.tasks = tasks
        self.workflows = workflows
        self.out = out
        self.ask = ask  # None: no terminal to ask a person on
        self.project_id = project_id

    def say(self, depth: int, text: str) -> None:
        print(f"{'  ' * (depth - 1)}{text}", file=self.out, flush=True)

    def run(self, definition: WorkflowDefinition, input: dict, depth: int = 1) -> tuple[bool, Any]:
        """(ok, output or error dict)."""
        graph = definition.graph
        status: dict[str, str] = {}
        outputs: dict[str, Any] = {}
        errors: dict[str, dict] = {}
        for spec in graph["steps"]:
            sid = spec["id"]
            outcomes = [status[d] for d in spec["depends_on"]]
            if not rule_met(spec.get("trigger_rule") or "all_success", outcomes):
                status[sid] = "skipped"
                self.say(depth, f"- {sid}: skipped (trigger rule {spec.get('trigger_rule')})")
                continue
            try:
                skip = False
                for key, wanted in (("when", True), ("unless", False)):
                    if spec.get(key) is not None:
                        value = resolve(spec[key], input=input, outputs=outputs)
                        skip = skip or bool(value) is not wanted
                if skip:
                    status[sid] = "skipped"
                    self.say(depth, f"- {sid}: skipped (condition)")
                    continue
                self.say(depth, f"> {sid} ({spec['kind']}) started")
                ok, value = getattr(self, f"_{spec['kind']}")(spec, input, outputs, depth)
            except MissingReference as exc:
                ok, value = (
                    False,
                    {
                        "message": f"step {sid!r}: {describe_ref(exc.ref)} resolved to nothing ({exc.reason})",
                        "code": "reference_missing",
                        "detail": None,
                    },
                )
            if ok:
                status[sid] = "completed"
                outputs[sid] = value
                self.say(depth, f"< {sid} completed")
            else:
                status[sid] = "failed"
                errors[sid] = value
                self.say(depth, f"! {sid} failed: {value['message']}")
        failed = [
            sid
            for sid, st in status.items()
            if st == "failed"
            and not next(s for s in graph["steps"] if s["id"] == sid).get("continue_on_failure")
        ]
        if failed:
            first = failed[0]
            return False, {
                "message": f"step {first!r} failed: {errors[first]['message']}",
                "code": "step_failed",
                "detail": {"step_id": first, "error": errors[first]},
            }
        try:
            if graph.get("output") is not None:
                return True, resolve(graph["output"], input=input, outputs=outputs)
        except MissingReference as exc:
            return False, {
                "message": f"the workflow output: {describe_ref(exc.ref)} resolved to nothing",
                "code": "output_invalid",
                "detail": None,
            }
        return True, outputs

    # --- step kinds ---------------------------------------------------------------------------

    def _run_task(self, spec: dict, input: Any, config: Any, depth: int) -> tuple[bool, Any]:
        task_id = spec["target"].removeprefix("task:")
        definition = self.tasks.get(task_id)
        if definition is None:
            return False, _err(f"no task {task_id!r}", "target_not_found")
        if not isinstance(input, dict):
            return False, _err("the step's input is not a JSON object", "invalid_input")
        input = apply_defaults(definition.input_schema, input)
        problems = schema_errors(definition.input_schema, input)
        if problems:
            return False, _err("; ".join(str(p) for p in problems), "invalid_input")
        attempts = 1 + (spec.get("retries") or definition.backoff_limit or 0)
        outcome = None
        for attempt in range(1, attempts + 1):
            ctx = LocalContext(
                input=input,
                config=config if isinstance(config, dict) else {},
                env=filtered_env(definition.env_allowlist),
                project_id=self.project_id,
                attempt=attempt,
            )
            outcome = execute(definition, ctx)
            if outcome.ok:
                return True, outcome.output
            if attempt < attempts:
                self.say(
                    depth,
                    f"  retrying {spec['id']} (attempt {attempt + 1}): {outcome.error['message']}",
                )
        return False, outcome.error

    def _task(self, spec, input, outputs, depth):
        return self._run_task(
            spec,
            resolve(spec.get("input") or {}, input=input, outputs=outputs),
            resolve(spec.get("config") or {}, input=input, outputs=outputs),
            depth,
        )

    def _map(self, spec, input, outputs, depth):
        items = resolve(spec["items"], input=input, outputs=outputs)
        if not isinstance(items, list):
            return False, _err(f"items must be a list, got {type(items).__name__}", "invalid_items")
        cap = settings.STUDIO_WORKFLOW_MAX_ITEMS
        if len(items) > cap:
            return False, _err(
                f"step {spec['id']!r}: {len(items)} items is more than the cap of {cap}",
                "too_many_items",
            )
        results = []
        for index, item in enumerate(items):
            kw = {"input": input, "outputs": outputs, "item": item, "has_item": True}
            ok, value = self._run_task(
                spec,
                resolve(spec.get("input") or {}, **kw),
                resolve(spec.get("config") or {}, **kw),
                depth,
            )
            if not ok:
                return False, _err(
                    f"step {spec['id']!r}: item {index} failed: {value['message']}",
                    value.get("code") or "task_error",
                )
            results.append(value)
        return True, results

    def _workflow(self, spec, input, outputs, depth):
        wid = spec["target"].removeprefix("workflow:")
        definition = self.workflows.get(wid)
        if definition is None:
            return False, _err(f"no workflow {wid!r}", "target_not_found")
        if depth + 1 > settings.STUDIO_WORKFLOW_MAX_DEPTH:
            return False, _err(
                f"workflows nest at most {settings.STUDIO_WORKFLOW_MAX_DEPTH} deep",
                "workflow_depth",
            )
        sub_input = resolve(spec.get("input") or {}, input=input, outputs=outputs)
        sub_input = apply_defaults(definition.input_schema, sub_input)
        problems = schema_errors(definition.input_schema, sub_input)
        if problems:
            return False, _err("; ".join(str(p) for p in problems), "invalid_input")
        return self.run(definition, sub_input, depth + 1)

    def _sleep(self, spec, input, outputs, depth):
        if spec.get("seconds") is not None:
            seconds = spec["seconds"]
        else:
            raw = resolve(spec["until"], input=input, outputs=outputs)
            until = parse_datetime(raw) if isinstance(raw, str) else None
            if until is None:
                return False, _err(f"until {raw!r} is not an ISO date-time", "invalid_until")
            if until.tzinfo is None:
                until = until.replace(tzinfo=UTC)
            seconds = max(0.0, (until - datetime.now(UTC)).total_seconds())
        self.say(depth, f"  sleeping {seconds:g}s")
        time.sleep(seconds)
        return True, {"slept_until": datetime.now(UTC).isoformat()}

    def _approval(self, spec, input, outputs, depth):
        if self.ask is None:
            return False, _err(
                f"approval {spec['id']!r} needs a person: run this on a terminal, or launch the "
                "workflow in Studio and approve it there",
                "approval_unavailable",
            )
        answer = self.ask(f"{spec['message']} [y/N] ").strip().lower()
        comment = self.ask("Comment (optional): ").strip()
        decision = {
            "approved": answer in ("y", "yes"),
            "by": "local",
            "comment": comment,
            "decided_at": datetime.now(UTC).isoformat(),
        }
        if not decision["approved"]:
            return False, _err(f"approval {spec['id']!r} was rejected", "approval_rejected")
        return True, decision

    def _wait_for_event(self, spec, input, outputs, depth):
        if self.ask is None:
            return False, _err(
                f"step {spec['id']!r} waits for event {spec['event']!r}: run this on a terminal "
                "to type its payload, or launch the workflow in Studio and signal it",
                "event_unavailable",
            )
        raw = self.ask(f"Payload of event {spec['event']!r} as JSON (empty for null): ").strip()
        try:
            return True, json.loads(raw) if raw else None
        except json.JSONDecodeError as exc:
            return False, _err(f"the payload is not JSON: {exc}", "invalid_payload")


def _err(message: str, code: str) -> dict:
    return {"message": message, "code": code, "detail": None}


def terminal_prompt() -> Callable[[str], str] | None:
    if not sys.stdin.isatty():
        return None
    return input
