"""Plain forms: every input the dashboard takes, GET filters included, goes through one."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from runs.models import Run, RunStatus
from runs.models.paging import InvalidCursor, Position
from runs.validation import json_problem, loads_json


class RunFilterForm(forms.Form):
    """The runs list filters and its keyset cursor; all of it lives in the URL."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    status = forms.ChoiceField(required=False, label="Status")
    target = forms.CharField(required=False, max_length=255, label="Task")
    trigger = forms.ChoiceField(required=False, label="Trigger")
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    # Older / newer page: "<epoch µs>~<run id>". No max_length: an overlong one is "not a
    # valid page link" like any other forged cursor.
    before = forms.CharField(required=False)
    after = forms.CharField(required=False)
    # Workflow steps' child runs are hidden unless asked for, so a big map does not flood the list.
    children = forms.BooleanField(required=False, label="Include child runs")

    def __init__(self, *args, targets: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "Any status"), ("active", "Active")] + list(
            RunStatus.choices
        )
        self.fields["trigger"].choices = [("", "Any trigger")] + list(Run.Trigger.choices)
        self.target_choices = list(targets)

    def clean_q(self) -> str:
        return self.cleaned_data["q"].strip()

    def _cursor(self, name: str) -> Position | None:
        raw = self.cleaned_data.get(name) or ""
        if not raw:
            return None
        try:
            return Position.parse(raw)
        except InvalidCursor:
            raise forms.ValidationError("Not a valid page link.") from None

    def clean_before(self):
        return self._cursor("before")

    def clean_after(self):
        return self._cursor("after")

    def clean_until(self):
        until = self.cleaned_data["until"]
        if until is not None and until >= dt.date.max:
            # The filter reaches to the start of the next day, which the calendar lacks.
            raise forms.ValidationError(f"Enter a date before {dt.date.max.isoformat()}.")
        return until

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "Must not be before the start date.")
        return data

    @property
    def is_filtered(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return any(
            data.get(k) for k in ("q", "status", "target", "trigger", "since", "until", "children")
        )


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())


class LaunchOptionsForm(forms.Form):
    """The launch form's parts that are not the task's input."""

    config = forms.CharField(
        required=False,
        label="Config (JSON)",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"}),
        help_text="Settings passed to the task as ctx.config, as a JSON object.",
    )
    timeout_seconds = forms.IntegerField(
        required=False,
        min_value=1,
        label="Timeout (seconds)",
        help_text="Stop the run after this long.",
    )
    backoff_limit = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=100,
        label="Retries",
        help_text="Retry a failed attempt this many times.",
    )

    def clean_config(self) -> dict:
        raw = self.cleaned_data["config"].strip()
        if not raw:
            return {}
        try:
            value = loads_json(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('Must be a JSON object, like {"key": "value"}.')
        problem = json_problem(value)
        if problem:
            raise forms.ValidationError(f"Cannot be stored: it {problem}.")
        return value


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, label="Name", help_text="What uses this token, e.g. “CI deploys”."
    )
    read_only = forms.BooleanField(
        required=False, label="Read only", help_text="Can read runs but not create or cancel them."
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the token a name.")
        return name
