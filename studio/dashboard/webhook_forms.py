"""Forms for webhooks and notification targets. The model-level checks (runs.webhooks,
runs.notify) are the judges; these forms turn typed text into their input and put each problem
on the field the person can fix."""

from __future__ import annotations

import json

from django import forms

from runs import notify
from runs.models import NotificationTarget, Webhook
from runs.webhook_files import TARGET_RE
from runs.webhooks import check_webhook

FILTER_HELP = (
    'JSON, or empty for every payload. Example: {"mode": "all", "conditions": [{"path": '
    '"headers.x-github-event", "operator": "equals", "value": "push"}]}'
)


class WebhookForm(forms.Form):
    id = forms.SlugField(
        max_length=64,
        label="Id",
        help_text="Lowercase letters, digits, - and _. The last part of the URL.",
    )
    name = forms.CharField(max_length=200, required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    target = forms.CharField(
        max_length=255,
        help_text="task:<id> or workflow:<id>: what a delivery starts.",
        widget=forms.TextInput(attrs={"list": "known-targets", "autocomplete": "off"}),
    )
    payload_to = forms.ChoiceField(
        choices=Webhook.PayloadTo.choices,
        initial="config",
        label="Payload goes to",
        help_text="config (the target's input must then accept {}), or input (validated "
        "against the target's input schema). Workflows always take input.",
    )
    scheme = forms.ChoiceField(choices=Webhook.Scheme.choices, initial="studio")
    header_name = forms.CharField(
        max_length=100,
        required=False,
        label="Header name",
        help_text="For a shared secret: the header that carries it, e.g. X-Webhook-Token.",
    )
    event_filter = forms.CharField(
        required=False,
        label="Event filter",
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text=FILTER_HELP,
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, instance: Webhook | None = None, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "id": instance.slug,
                "name": instance.name,
                "description": instance.description,
                "target": instance.target,
                "payload_to": instance.payload_to,
                "scheme": instance.scheme,
                "header_name": instance.header_name,
                "event_filter": json.dumps(instance.event_filter, indent=2)
                if instance.event_filter
                else "",
                "enabled": instance.enabled,
            }
        super().__init__(*args, **kwargs)
        if instance is not None:
            self.fields["id"].disabled = True

    def clean_event_filter(self):
        raw = self.cleaned_data["event_filter"].strip()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"is not valid JSON: {exc}") from None

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        values = {k: v for k, v in data.items() if k != "id"}
        if self.instance is None:
            values["id"] = data["id"]
        for problem in check_webhook(values, instance=self.instance):
            name = problem.field.split(".")[0]
            self.add_error(name if name in self.fields else None, problem.message)
        return data


class NotificationForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    kind = forms.ChoiceField(choices=NotificationTarget.Kind.choices, initial="json")
    url = forms.CharField(
        max_length=2000,
        label="URL",
        help_text="Where to POST. Slack: the incoming-webhook URL.",
    )
    targets = forms.CharField(
        required=False,
        label="Only these targets",
        help_text="task:<id> or workflow:<id>, one per line; empty for every run.",
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
    )
    outcomes = forms.MultipleChoiceField(
        choices=[(o, o.replace("_", " ")) for o in NotificationTarget.OUTCOMES],
        widget=forms.CheckboxSelectMultiple,
        initial=["failed"],
        help_text="A timeout counts as both timed out and failed. Recovered: the first success "
        "after a failure.",
    )
    include_children = forms.BooleanField(required=False, label="Include child runs of workflows")
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, instance: NotificationTarget | None = None, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "kind": instance.kind,
                "url": instance.url,
                "targets": "\n".join(instance.targets),
                "outcomes": instance.outcomes,
                "include_children": instance.include_children,
                "enabled": instance.enabled,
            }
        super().__init__(*args, **kwargs)
        if instance is not None:
            self.fields["kind"].disabled = True

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        problem = notify.url_problem(url)
        if problem:
            raise forms.ValidationError(f"This URL {problem}.")
        return url

    def clean_targets(self):
        names = [n.strip() for n in self.cleaned_data["targets"].replace(",", "\n").splitlines()]
        names = [n for n in names if n]
        bad = [n for n in names if not TARGET_RE.fullmatch(n)]
        if bad:
            raise forms.ValidationError(
                f"{', '.join(bad)}: each must look like task:<id> or workflow:<id>"
            )
        return names
