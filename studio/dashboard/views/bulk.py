"""Bulk cancel / re-run from the runs list, their progress, and saved run-list filters.

The runs list posts a selection (checked runs, or "all that match this filter") here; this
answers with a confirmation stating the count; confirming starts a background operation
(runs/operations.py) and shows its progress. No request does the work itself.
"""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from runs import operations
from runs.models import Operation, Run, SavedFilter, is_run_id

from ..forms import RunFilterForm
from ..permissions import Role, get_access
from ..rendering import render_blocks
from .runs import _filtered, filter_query

MAX_SELECTED = 500  # checkboxes on one page are far fewer; anything bigger is a filter


class BulkForm(forms.Form):
    action = forms.ChoiceField(choices=Operation.Kind.choices)
    scope = forms.ChoiceField(choices=[("selected", "selected"), ("filter", "filter")])
    run_ids = forms.CharField(required=False)  # several values; read with getlist
    query = forms.CharField(required=False, max_length=2000)
    confirm = forms.BooleanField(required=False)


def _selection(request, access, form: BulkForm):
    """(what the operation acts on, the runs it will change, a description) or an error."""
    project = access.project
    kind = form.cleaned_data["action"]
    if form.cleaned_data["scope"] == "selected":
        ids = [i for i in request.POST.getlist("run_ids") if is_run_id(i)][:MAX_SELECTED]
        if not ids:
            return None, "Select at least one run first."
        chosen = Run.objects.filter(project=project, pk__in=ids)
        return {"run_ids": ids}, operations.targets(kind, chosen)
    filters = RunFilterForm(QueryDict(form.cleaned_data["query"]))
    if not filters.is_valid():
        return None, "The filter was not understood; filter the list again."
    runs = _filtered(project, filters.cleaned_data)
    return {"runs": runs, "filter": dict(QueryDict(form.cleaned_data["query"]).items())}, (
        operations.targets(kind, runs)
    )


@login_required
@require_POST
def bulk(request, project: str):
    access = get_access(request, project, Role.OPERATOR)
    runs_url = reverse("dashboard:runs", args=[access.project.slug])
    form = BulkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That bulk action was not understood.")
        return redirect(runs_url)
    query = form.cleaned_data["query"]
    back = f"{runs_url}?{query}" if query else runs_url
    what, targets = _selection(request, access, form)
    if what is None:
        messages.error(request, targets)
        return redirect(back)
    kind = form.cleaned_data["action"]
    count = targets.count()
    if not form.cleaned_data["confirm"]:
        return render(
            request,
            "bulk/confirm.html",
            {
                "access": access,
                "project": access.project,
                "nav": "runs",
                "kind": kind,
                "verb": "Cancel" if kind == Operation.Kind.CANCEL else "Re-run",
                "count": count,
                "scope": form.cleaned_data["scope"],
                "run_ids": what.get("run_ids", []),
                "query": query,
                "back": back,
            },
        )
    if not count:
        messages.info(request, "No run to change: nothing was done.")
        return redirect(back)
    try:
        operation = operations.start(
            access.project,
            kind,
            run_ids=[r for r in targets.values_list("pk", flat=True)]
            if "run_ids" in what
            else None,
            runs=what.get("runs"),
            filter=what.get("filter"),
            created_by=request.user.get_username(),
        )
    except operations.TooManyRuns as exc:
        messages.error(request, f"Too many runs for one action ({exc}). Narrow the filter.")
        return redirect(back)
    return redirect("dashboard:operation", project=access.project.slug, operation_id=operation.pk)


@login_required
@require_GET
def operation(request, project: str, operation_id: str):
    access = get_access(request, project)
    try:
        pk = uuid.UUID(operation_id)
    except ValueError:
        raise Http404("no such operation") from None
    op = get_object_or_404(Operation, pk=pk, project=access.project)
    context = {
        "access": access,
        "project": access.project,
        "nav": "runs",
        "op": op,
        "percent": round(100 * op.processed / op.total) if op.total else 100,
        "done": op.state == Operation.State.COMPLETED,
    }
    if request.htmx:
        return render_blocks(request, "bulk/operation.html", ["progress"], context)
    return render(request, "bulk/operation.html", context)


# --- saved filters ------------------------------------------------------------------------------


class SavedFilterForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)
    query = forms.CharField(required=False, max_length=2000)


@login_required
@require_POST
def save_filter(request, project: str):
    access = get_access(request, project)
    form = SavedFilterForm(request.POST)
    runs_url = reverse("dashboard:runs", args=[access.project.slug])
    query = filter_query(QueryDict(request.POST.get("query", "")))
    if not form.is_valid():
        messages.error(request, "Give the filter a name (at most 100 characters) to save it.")
    elif not RunFilterForm(QueryDict(query)).is_valid():
        messages.error(request, "This filter is not valid; fix it before saving it.")
    else:
        name = form.cleaned_data["name"]
        try:
            SavedFilter.objects.update_or_create(
                user=request.user, project=access.project, name=name, defaults={"query": query}
            )
        except IntegrityError:  # the same name saved twice at once: the other one stands
            pass
        messages.success(request, f"Filter “{name}” saved.")
    return redirect(f"{runs_url}?{query}" if query else runs_url)


@login_required
@require_POST
def delete_filter(request, project: str, filter_id: int):
    access = get_access(request, project)
    saved = get_object_or_404(SavedFilter, pk=filter_id, project=access.project, user=request.user)
    saved.delete()
    messages.success(request, f"Filter “{saved.name}” deleted.")
    return redirect("dashboard:runs", project=access.project.slug)
