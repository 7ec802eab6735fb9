"""`manage.py workflow <id>`: run one workflow locally in this process, step by step."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from runs.definitions import discover
from runs.models import Project
from runs.orchestration.discovery import discover_workflows
from runs.orchestration.local import LocalRunner, terminal_prompt
from runs.validation import apply_defaults, schema_errors

from .task import parse_json_object


class Command(BaseCommand):
    help = (
        "Run a workflow locally in this process (task steps as `manage.py task` runs them) and "
        "print its output as the final JSON line."
    )

    def add_arguments(self, parser):
        parser.add_argument("workflow_id")
        parser.add_argument("--input", help="input as a JSON object, checked against input_schema")
        parser.add_argument("--project", help="project slug or id to expose as ctx.project_id")

    def handle(self, *args, **options):
        workflows = discover_workflows(in_process=True)  # local CLI: the developer's own code
        definition = workflows.get(options["workflow_id"])
        if definition is None:
            available = ", ".join(sorted(workflows.workflows)) or "(none)"
            message = (
                f"Unknown workflow {options['workflow_id']!r}. Available workflows: {available}"
            )
            if workflows.errors:
                message += (
                    f"\nHint: {len(workflows.errors)} workflow file(s) failed to load; "
                    "run `python manage.py workflows` to see why."
                )
            raise CommandError(message, returncode=2)
        wf_input = apply_defaults(
            definition.input_schema, parse_json_object(options["input"], "--input")
        )
        problems = schema_errors(definition.input_schema, wf_input)
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
                raise CommandError(f"No project {options['project']!r}", returncode=2)
            project_id = str(project.pk)
        out = sys.stdout
        if hasattr(out, "reconfigure"):
            out.reconfigure(line_buffering=True)
        print(f"Running workflow: {definition.name} ({definition.id})", file=out, flush=True)
        runner = LocalRunner(
            discover(in_process=True),  # local CLI: the developer's own code, in-process
            workflows,
            out=out,
            ask=terminal_prompt(),
            project_id=project_id,
        )
        ok, result = runner.run(definition, wf_input)
        if not ok:
            print(f"Workflow failed: {result['message']}", file=sys.stderr, flush=True)
            sys.exit(1)
        print("Workflow completed", file=out)
        print(json.dumps(result), file=out, flush=True)
