"""The tasks list and a task's launch form (generated from its input_schema)."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from runs.definitions import discover
from runs.models import Run, is_run_id
from runs.service import RunError, create_run

from ..forms import LaunchOptionsForm
from ..permissions import Role, get_access
from ..rendering import render_blocks
from ..schema_form import MISSING, SchemaForm

OPTION_FIELDS = {"config", "timeout_seconds", "backoff_limit"}


@login_required
@require_GET
def tasks(request, project: str):
    access = get_access(request, project)
    found = discover()
    rows = []
    for definition in sorted(found.tasks.values(), key=lambda d: d.name.lower()):
        # One small indexed query per task (run_project_newest, filtered by target).
        last = (
            Run.objects.filter(project=access.project, target=definition.target)
            .only("id", "status", "created_at", "cancel_requested_at", "completed_at")
            .order_by("-created_at", "-id")
            .first()
        )
        rows.append((definition, last))
    return render(
        request,
        "tasks/tasks.html",
        {
            "access": access,
            "project": access.project,
            "rows": rows,
            "errors": found.errors,
            "nav": "tasks",
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def launch(request, project: str, task_id: str):
    access = get_access(
        request, project, Role.OPERATOR if request.method == "POST" else Role.VIEWER
    )
    definition = discover().get(task_id)
    if definition is None:
        raise Http404("no such task")
    context = {"access": access, "project": access.project, "task": definition, "nav": "tasks"}

    if request.method == "GET":
        rerun_of = None
        initial: object = MISSING
        options_initial = {}
        if request.GET.get("rerun"):
            rerun_of = get_object_or_404(
                Run.objects.only(
                    "id", "target", "input", "config", "timeout_seconds", "backoff_limit"
                ),
                pk=request.GET["rerun"],
                project=access.project,
            )
            if rerun_of.task_id != task_id:
                raise Http404("that run is of another task")
            initial = rerun_of.input
            options_initial = {
                "config": json.dumps(rerun_of.config, indent=2) if rerun_of.config else "",
                "timeout_seconds": rerun_of.timeout_seconds,
                "backoff_limit": rerun_of.backoff_limit,
            }
        context.update(
            schema_form=SchemaForm(definition.input_schema, initial=initial),
            options=LaunchOptionsForm(initial=options_initial),
            rerun_of=rerun_of,
        )
        return render(request, "tasks/launch.html", context)

    schema_form = SchemaForm(definition.input_schema, data=request.POST)
    options = LaunchOptionsForm(request.POST)
    rerun_of = None
    if is_run_id(request.POST.get("rerun_of", "")):
        rerun_of = (
            Run.objects.filter(pk=request.POST["rerun_of"], project=access.project)
            .only("id")
            .first()
        )
    context.update(schema_form=schema_form, options=options, rerun_of=rerun_of)

    action = request.POST.get("_action", "")
    if action and schema_form.apply_action(action):
        # "Add row" / "Remove row" / "Show fields": redraw the form, create nothing.
        for f in schema_form.root.walk():
            f.errors = []
        if request.htmx:
            return render_blocks(request, "tasks/launch.html", ["input_fields"], context)
        return render(request, "tasks/launch.html", context)

    input_ok = schema_form.is_valid()
    options_ok = options.is_valid()
    if input_ok and options_ok:
        try:
            result = create_run(
                access.project,
                target=definition.target,
                input=schema_form.input,
                config=options.cleaned_data["config"],
                timeout_seconds=options.cleaned_data["timeout_seconds"],
                backoff_limit=options.cleaned_data["backoff_limit"],
                trigger_kind=Run.Trigger.MANUAL,
                created_by=request.user.get_username(),
                metadata={"rerun_of": rerun_of.pk} if rerun_of else None,
            )
        except RunError as exc:
            _file_service_errors(exc, schema_form, options)
        else:
            return redirect("dashboard:run", project=access.project.slug, run_id=result.run.pk)
    context["has_errors"] = True
    return render(request, "tasks/launch.html", context, status=422)


def _file_service_errors(
    exc: RunError, schema_form: SchemaForm, options: LaunchOptionsForm
) -> None:
    """Put what the service rejected next to the field it names."""
    input_errors = []
    for error in exc.errors:
        if error.field in OPTION_FIELDS:
            options.add_error(error.field, error.message)
        elif error.field == "input" or error.field.startswith("input."):
            input_errors.append(error)
        else:
            schema_form.errors.append(str(error))
    schema_form.add_errors(input_errors, schema_form.input)
    if not exc.errors:
        schema_form.errors.append(exc.message)
