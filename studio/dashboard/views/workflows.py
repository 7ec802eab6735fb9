"""Workflows: the list (with discovery errors), a workflow's graph and launch form, and the live
part of a workflow run's page (graph with step statuses, steps, approvals, re-run)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from runs.models import Run
from runs.orchestration import actions
from runs.orchestration.discovery import discover_workflows
from runs.service import RunError, create_run, rerun
from runs.validation import storable_text
from runs.workflows.graph import nodes_and_edges

from ..graph_layout import layout
from ..permissions import Role, get_access
from ..rendering import render_blocks
from ..schema_form import MISSING, SchemaForm


@login_required
@require_GET
def workflows(request, project: str):
    access = get_access(request, project)
    found = discover_workflows()
    rows = []
    for definition in sorted(found.workflows.values(), key=lambda d: d.name.lower()):
        last = (
            Run.objects.filter(project=access.project, target=definition.target)
            .only("id", "status", "created_at", "cancel_requested_at", "completed_at")
            .order_by("-created_at", "-id")
            .first()
        )
        rows.append((definition, last))
    return render(
        request,
        "workflows/workflows.html",
        {
            "access": access,
            "project": access.project,
            "rows": rows,
            "errors": found.errors,
            "nav": "workflows",
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def workflow(request, project: str, workflow_id: str):
    access = get_access(
        request, project, Role.OPERATOR if request.method == "POST" else Role.VIEWER
    )
    definition = discover_workflows().get(workflow_id)
    if definition is None:
        raise Http404("no such workflow")
    context = {
        "access": access,
        "project": access.project,
        "workflow": definition,
        "graph": layout(**nodes_and_edges(definition.graph)),
        "nav": "workflows",
    }
    if request.method == "GET":
        initial: object = MISSING
        rerun_of = None
        if request.GET.get("rerun"):
            rerun_of = get_object_or_404(
                Run.objects.only("id", "target", "input"),
                pk=request.GET["rerun"],
                project=access.project,
            )
            initial = rerun_of.input
        context.update(
            schema_form=SchemaForm(definition.input_schema, initial=initial), rerun_of=rerun_of
        )
        return render(request, "workflows/workflow.html", context)

    schema_form = SchemaForm(definition.input_schema, data=request.POST)
    context["schema_form"] = schema_form
    action = request.POST.get("_action", "")
    if action and schema_form.apply_action(action):
        for f in schema_form.root.walk():
            f.errors = []
        if request.htmx:
            return render_blocks(request, "workflows/workflow.html", ["input_fields"], context)
        return render(request, "workflows/workflow.html", context)
    if schema_form.is_valid():
        try:
            result = create_run(
                access.project,
                target=definition.target,
                input=schema_form.input,
                trigger_kind=Run.Trigger.MANUAL,
                created_by=request.user.get_username(),
            )
        except RunError as exc:
            _file_errors(exc, schema_form)
        else:
            return redirect("dashboard:run", project=access.project.slug, run_id=result.run.pk)
    context["has_errors"] = True
    return render(request, "workflows/workflow.html", context, status=422)


def _file_errors(exc: RunError, schema_form: SchemaForm) -> None:
    """Put what the service rejected next to the input field it names, the rest on top."""
    inputs = [e for e in exc.errors if e.field == "input" or e.field.startswith("input.")]
    schema_form.errors.extend(str(e) for e in exc.errors if e not in inputs)
    schema_form.add_errors(inputs, schema_form.input)
    if not exc.errors:
        schema_form.errors.append(exc.message)


def run_panel_context(access, run: Run) -> dict:
    """What the workflow panel of a run page shows: the graph coloured by step status, steps
    with their child runs, approvals."""
    steps = list(run.steps.order_by("position"))
    graph = run.workflow_graph.graph if hasattr(run, "workflow_graph") else {"steps": []}
    drawn = layout(**nodes_and_edges(graph)) if graph["steps"] else None
    by_id = {s.step_id: s for s in steps}
    if drawn:
        for node in drawn.nodes:
            step = by_id.get(node.id)
            if step:
                node.step_status = step.status
                if step.child_run_ids and step.kind != "map":
                    node.href = reverse(
                        "dashboard:run", args=[access.project.slug, step.child_run_ids[-1]]
                    )
    children = {
        r.pk: r
        for r in Run.objects.filter(parent_run=run).only(
            "id", "status", "created_at", "started_at", "completed_at", "cancel_requested_at"
        )
    }
    rows = []
    for step in steps:
        kids = [children[i] for i in step.child_run_ids if i in children]
        wait = execution = None
        if kids and kids[0].started_at:
            wait = (kids[0].started_at - kids[0].created_at).total_seconds()
        if step.started_at and step.completed_at:
            execution = (step.completed_at - step.started_at).total_seconds()
        rows.append(
            {
                "step": step,
                "children": kids[:20],
                "more": max(0, len(kids) - 20),
                "queue_wait": wait,
                "execution": execution,
            }
        )
    return {
        "access": access,
        "project": access.project,
        "run": run,
        "graph": drawn,
        "step_rows": rows,
        "approvals": list(run.approvals.order_by("requested_at", "id")),
        "has_failed_step": any(s.status == "failed" for s in steps),
        "live": not run.is_terminal,
    }


@login_required
@require_GET
def run_panel(request, project: str, run_id: str):
    """The workflow panel's poll: the same block the run page renders, redrawn."""
    access = get_access(request, project)
    run = get_object_or_404(
        Run.objects.defer("logs"), pk=run_id, project=access.project, kind=Run.Kind.WORKFLOW
    )
    return render_blocks(
        request, "workflows/_run_panel.html", ["panel"], run_panel_context(access, run)
    )


@login_required
@require_POST
def decide(request, project: str, run_id: str, step_id: str):
    access = get_access(request, project, Role.OPERATOR)
    run = get_object_or_404(Run, pk=run_id, project=access.project, kind=Run.Kind.WORKFLOW)
    approved = request.POST.get("decision") == "approve"
    if request.POST.get("decision") not in ("approve", "reject"):
        return HttpResponse("decision must be approve or reject", status=400)
    comment = request.POST.get("comment", "")[:10_000]
    try:
        storable_text(comment)
    except ValueError as exc:
        return HttpResponse(f"comment: {exc}", status=400)
    try:
        actions.decide_approval(
            run, step_id, approved=approved, comment=comment, by=request.user.get_username()
        )
    except actions.NotFound:
        raise Http404("no such approval") from None
    except actions.AlreadyDecided as exc:
        messages.info(request, exc.message)
    else:
        messages.success(request, "Approved." if approved else "Rejected.")
    if request.htmx:
        run.refresh_from_db()
        return render_blocks(
            request, "workflows/_run_panel.html", ["panel"], run_panel_context(access, run)
        )
    return redirect("dashboard:run", project=access.project.slug, run_id=run.pk)


@login_required
@require_POST
def rerun_workflow(request, project: str, run_id: str):
    access = get_access(request, project, Role.OPERATOR)
    run = get_object_or_404(Run, pk=run_id, project=access.project, kind=Run.Kind.WORKFLOW)
    try:
        result = rerun(
            run,
            created_by=request.user.get_username(),
            from_failed=request.POST.get("from") == "failed",
        )
    except RunError as exc:
        messages.error(request, f"Could not re-run: {exc.message}")
        return redirect("dashboard:run", project=access.project.slug, run_id=run.pk)
    return redirect("dashboard:run", project=access.project.slug, run_id=result.run.pk)
