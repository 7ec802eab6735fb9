"""`manage.py task <id>`: run one task in this process, exactly as a worker would run it."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from runs.definitions import LocalContext, discover, filtered_env
from runs.models import Project
from runs.process.runner import execute
from runs.validation import apply_defaults, schema_errors


def parse_json_object(raw: str | None, option: str) -> dict:
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{option} is not valid JSON: {exc}", returncode=2) from None
    if not isinstance(value, dict):
        raise CommandError(
            f"{option} must be a JSON object like '{{\"key\": 1}}', got {type(value).__name__}",
            returncode=2,
        )
    return value


class LineEndTracker:
    """Wraps stdout to remember whether the task left the cursor at the start of a line."""

    def __init__(self, stream):
        self._stream = stream
        self.at_line_start = True

    def write(self, text: str) -> int:
        if text:
            self.at_line_start = text.endswith("\n")
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class Command(BaseCommand):
    help = "Run a task locally in this process and print its result as the final JSON line."

    def add_arguments(self, parser):
        parser.add_argument("task_id", help="the task id, e.g. sync-data or reports-weekly")
        parser.add_argument(
            "--input", help="input as a JSON object, validated against the task's input_schema"
        )
        parser.add_argument("--config", help="run configuration as a JSON object")
        parser.add_argument("--project", help="project slug or id to expose as ctx.project_id")

    def handle(self, *args, **options):
        task_id = options["task_id"]
        found = discover(in_process=True)  # the developer's own machine and code
        definition = found.get(task_id)
        if definition is None:
            available = ", ".join(sorted(found.tasks)) or "(none)"
            message = f"Unknown task {task_id!r}. Available tasks: {available}"
            if found.errors:
                message += (
                    f"\nHint: {len(found.errors)} task file(s) failed to load; "
                    "run `python manage.py tasks` to see why."
                )
            raise CommandError(message, returncode=2)

        task_input = parse_json_object(options["input"], "--input")
        config = parse_json_object(options["config"], "--config")
        task_input = apply_defaults(definition.input_schema, task_input)
        problems = schema_errors(definition.input_schema, task_input)
        if problems:
            raise CommandError(
                "Invalid --input:\n"
                + "\n".join(f"  {p.field}: {p.message} ({p.rule})" for p in problems),
                returncode=2,
            )
        project_id = None
        if options["project"]:
            project = Project.by_reference(options["project"]).first()
            if project is None:
                raise CommandError(
                    f"No project {options['project']!r} (give a slug or an id)", returncode=2
                )
            project_id = str(project.pk)

        out = sys.stdout
        # Piped (CI logs, `| tee`), stdout is block-buffered and a long task would show nothing
        # until it ended; line buffering keeps its output "as it happens" there too.
        if hasattr(out, "reconfigure"):
            out.reconfigure(line_buffering=True)
        print(f"Running task: {definition.name} ({definition.id})", file=out, flush=True)
        ctx = LocalContext(
            input=task_input,
            config=config,
            env=filtered_env(definition.env_allowlist),
            project_id=project_id,
        )
        sys.stdout = tracked = LineEndTracker(out)
        try:
            outcome = execute(definition, ctx)
        finally:
            sys.stdout = out
        out.flush()
        if not tracked.at_line_start:
            out.write("\n")  # the task's last print had no newline: keep our lines our own
        if not outcome.ok:
            print(
                f"Task failed after {outcome.duration_ms}ms: {outcome.error['message']}",
                file=sys.stderr,
                flush=True,
            )
            if options.get("traceback") and outcome.error.get("detail"):
                print(outcome.error["detail"], file=sys.stderr, end="", flush=True)
            sys.exit(1)
        print(f"Task completed in {outcome.duration_ms}ms", file=out)
        print(json.dumps(outcome.output), file=out, flush=True)
