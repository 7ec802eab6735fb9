"""Template helpers shared by every dashboard page: status badges, times, durations, JSON."""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

register = template.Library()

STATUS_LABELS = {
    "pending": "Pending",
    "running": "Running",
    "waiting": "Waiting",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "cancelling": "Cancelling",
}


@register.simple_tag
def status_badge(run_or_status: Any) -> str:
    """A coloured badge that also says the status in words ("cancelling" while a cancel waits)."""
    if isinstance(run_or_status, str):
        status = run_or_status
    else:
        status = (
            "cancelling" if getattr(run_or_status, "cancelling", False) else run_or_status.status
        )
    return format_html(
        '<span class="badge badge-{}"><span class="dot" aria-hidden="true"></span>{}</span>',
        status,
        STATUS_LABELS.get(status, status),
    )


def relative(when: dt.datetime, now: dt.datetime | None = None) -> str:
    now = now or timezone.now()
    seconds = int((now - when).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 10:
        return "just now"
    for size, unit in (
        (86400 * 365, "y"),
        (86400 * 30, "mo"),
        (86400, "d"),
        (3600, "h"),
        (60, "min"),
        (1, "s"),
    ):
        if seconds >= size:
            amount = seconds // size
            return f"in {amount} {unit}" if future else f"{amount} {unit} ago"
    return "just now"


def exact(when: dt.datetime) -> str:
    return timezone.localtime(when).strftime("%Y-%m-%d %H:%M:%S %Z")


@register.simple_tag
def reltime(when: dt.datetime | None, empty: str = "—") -> str:
    """A relative time ("3 min ago") with the exact time on hover, kept fresh by studio.js."""
    if when is None:
        return format_html('<span class="muted">{}</span>', empty)
    return format_html(
        '<time datetime="{}" title="{}" data-relative>{}</time>',
        when.isoformat(),
        exact(when),
        relative(when),
    )


@register.simple_tag
def abstime(when: dt.datetime | None) -> str:
    if when is None:
        return format_html('<span class="muted">—</span>')
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', when.isoformat(), relative(when), exact(when)
    )


@register.filter
def duration(ms: int | None) -> str:
    """Milliseconds as "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min"."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def pretty_json(value: Any) -> str:
    """Indented JSON text (autoescaped by the template like any other string)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


@register.filter
def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


@register.simple_tag(takes_context=True)
def query(context, **changes) -> str:
    """The current query string with some parameters changed (None or "" drops one)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value not in (None, ""):
            params[key] = value
    encoded = urlencode(sorted(params.lists()), doseq=True)
    return f"?{encoded}" if encoded else "?"


@register.filter
def percent(part: float | None, whole: float | None) -> float:
    try:
        return max(0.0, min(100.0, 100.0 * float(part) / float(whole)))
    except (TypeError, ValueError, ZeroDivisionError):
        return 0.0


@register.simple_tag(takes_context=True)
def switcher_projects(context) -> list:
    """Projects for the header's switcher (queried only when the header is drawn)."""
    from ..permissions import projects_for

    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return []
    return projects_for(request.user)


@register.filter
def event_class(event) -> str:
    """CSS classes for one event row: its kind and, for log lines, the stream."""
    kind = event.event_type
    if kind == "log":
        stream = event.payload.get("stream") if isinstance(event.payload, dict) else None
        return f"ev-log ev-{'stderr' if stream == 'stderr' else 'stdout'}"
    if kind.startswith("run.") or kind == "events.dropped":
        return f"ev-system ev-{kind.replace('.', '-')}"
    if kind == "progress":
        return "ev-progress"
    return "ev-custom"


def _event_text(event) -> tuple[str, str]:
    """(tag, text) for one event row of the log."""
    kind, p = event.event_type, event.payload if isinstance(event.payload, dict) else {}
    if kind == "log":
        return ("err" if p.get("stream") == "stderr" else "out"), str(p.get("line", ""))
    if kind == "progress":
        total = f"/{p['total']}" if p.get("total") is not None else ""
        message = f" · {p['message']}" if p.get("message") else ""
        return "progress", f"{p.get('current')}{total}{message}"
    if kind == "run.created":
        who = f" by {p['created_by']}" if p.get("created_by") else ""
        return "created", f"{p.get('trigger_kind') or ''}{who}"
    if kind == "run.started":
        where = f" on {p['worker']}" if p.get("worker") else ""
        return "started", f"attempt {p.get('attempt', '?')}{where}"
    if kind == "run.retrying":
        error = p.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return (
            "retrying",
            f"attempt {p.get('attempt', '?')} failed: {message}; next try in {p.get('delay_seconds', '?')} s",
        )
    if kind == "run.completed":
        return "completed", "finished successfully"
    if kind == "run.failed":
        error = p.get("error")
        return "failed", str(error.get("message") if isinstance(error, dict) else error)
    if kind == "run.cancelled":
        return "cancelled", str(p.get("reason") or "")
    return kind, compact_json(event.payload)


@register.simple_tag
def event_rows(events) -> str:
    """The log's rows. Built in Python rather than a template loop (a window of 200 events
    renders in a couple of milliseconds). Everything a task printed goes through escape()."""
    rows = []
    for event in events:
        tag, text = _event_text(event)
        when = event.created_at
        if event.event_type == "log":
            stream = "stderr" if tag == "err" else "stdout"
            label = f'<span class="stream stream-{stream}">{tag}</span>'
        else:
            label = f'<span class="ev-kind">{escape(tag)}</span>'
        rows.append(
            f'<div class="ev {escape(event_class(event))}" id="ev-{int(event.pk)}">'
            f'<time class="ev-time" datetime="{when.isoformat()}" title="{when:%Y-%m-%d %H:%M:%S} UTC">'
            f"{when:%H:%M:%S}</time>{label}"
            f'<span class="ev-line">{escape(text)}</span></div>\n'
        )
    return mark_safe("".join(rows))  # noqa: S308 - every variable part went through escape()
