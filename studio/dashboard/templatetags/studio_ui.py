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

from ..ansi import ansi_to_html

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


def _error_message(error) -> str:
    return str(error.get("message") if isinstance(error, dict) else error or "")


def _seconds(value) -> str:
    try:
        return f"{float(value):g} s"
    except (TypeError, ValueError):
        return "? s"


def _event_text(event) -> tuple[str, str]:
    """(tag, text) for one event row of the log: in words, not raw JSON."""
    kind, p = event.event_type, event.payload if isinstance(event.payload, dict) else {}
    if kind == "log":
        return ("err" if p.get("stream") == "stderr" else "out"), str(p.get("line", ""))
    if kind == "progress":
        total = f"/{p['total']}" if p.get("total") is not None else ""
        message = f" · {p['message']}" if p.get("message") else ""
        return "progress", f"{p.get('current')}{total}{message}"
    if kind == "run.created":
        who = f" by {p['created_by']}" if p.get("created_by") else ""
        return "created", f"{p.get('trigger_kind') or 'created'}{who}".strip()
    if kind == "run.started":
        where = f" on {p['worker']}" if p.get("worker") else ""
        return "started", f"attempt {p.get('attempt', '?')}{where}"
    if kind == "run.retrying":
        # The payload's `attempt` is the attempt that comes next; the one that failed is the one
        # before it (a payload may also name it outright).
        nxt = p.get("attempt")
        failed = p.get("failed_attempt") or (nxt - 1 if isinstance(nxt, int) else "?")
        return (
            "retrying",
            f"attempt {failed} failed: {_error_message(p.get('error'))}; "
            f"attempt {nxt if nxt is not None else '?'} in {_seconds(p.get('delay_seconds'))}",
        )
    if kind == "run.cancelling":
        grace = p.get("grace_seconds")
        return "cancelling", "cancel requested" + (f", grace {_seconds(grace)}" if grace else "")
    if kind == "run.completed":
        return "completed", "finished successfully"
    if kind == "run.failed":
        return "failed", _error_message(p.get("error"))
    if kind == "run.cancelled":
        return "cancelled", str(p.get("reason") or "cancelled")
    if kind == "run.waiting":
        return "waiting", str(p.get("reason") or "")
    if kind == "run.resumed":
        return "resumed", ""
    if kind == "events.dropped":
        return "dropped", f"{p.get('count', 'some')} events were dropped (too many, too fast)"
    if kind.startswith("run."):
        words = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in p.items() if v is not None)
        return kind.removeprefix("run."), words
    return kind, compact_json(event.payload)


def event_kind(event) -> str:
    """Which filter chip an event belongs to: stdout, stderr, progress or studio."""
    if event.event_type == "log":
        stream = event.payload.get("stream") if isinstance(event.payload, dict) else None
        return "stderr" if stream == "stderr" else "stdout"
    if event.event_type == "progress":
        return "progress"
    return "studio"


@register.simple_tag
def event_rows(events, highlight: str = "", target: int | None = None) -> str:
    """The log's rows. Built in Python rather than a template loop (a window of 200 events
    renders in a couple of milliseconds). Everything a task printed goes through escape()
    (ansi_to_html escapes every text part). Each row's time links to the line itself."""
    rows = []
    for event in events:
        tag, text = _event_text(event)
        when = event.created_at
        pk = int(event.pk)
        if event.event_type == "log":
            stream = "stderr" if tag == "err" else "stdout"
            label = f'<span class="stream stream-{stream}">{tag}</span>'
            line = ansi_to_html(text, highlight)
        else:
            label = f'<span class="ev-kind">{escape(tag)}</span>'
            line = ansi_to_html(text, highlight) if event.event_type == "progress" else escape(text)
        classes = f"ev {event_class(event)}" + (" ev-target" if target == pk else "")
        rows.append(
            f'<div class="{escape(classes)}" id="ev-{pk}">'
            f'<a class="ev-time" href="?around={pk}#ev-{pk}" title="{when:%Y-%m-%d %H:%M:%S} UTC'
            f' · link to this line"><time datetime="{when.isoformat()}">{when:%H:%M:%S}</time></a>'
            f"{label}"
            f'<span class="ev-line">{line}</span>'
            f'<button type="button" class="ev-copy js-only" data-copy-link="{pk}" '
            f'aria-label="Copy link to line {pk}">copy link</button></div>\n'
        )
    return mark_safe("".join(rows))  # noqa: S308 - every variable part went through escape()


# --- JSON as a collapsible tree -----------------------------------------------------------------
TREE_MAX_NODES = 2000  # past this, the raw text is the better view
TREE_OPEN_DEPTH = 2  # deeper objects start folded


def _tree_scalar(value: Any) -> str:
    if value is None:
        return '<span class="j-null">null</span>'
    if isinstance(value, bool):
        return f'<span class="j-bool">{"true" if value else "false"}</span>'
    if isinstance(value, int | float):
        return f'<span class="j-num">{escape(json.dumps(value))}</span>'
    return f'<span class="j-str">{escape(json.dumps(value, ensure_ascii=False))}</span>'


def _tree_node(key: str | None, value: Any, depth: int, budget: list[int]) -> str:
    budget[0] -= 1
    label = f'<span class="j-key">{escape(key)}</span>: ' if key is not None else ""
    if isinstance(value, dict | list) and value:
        is_dict = isinstance(value, dict)
        items = value.items() if is_dict else enumerate(value)
        size = f"{len(value)} {'key' if is_dict else 'item'}{'s' if len(value) != 1 else ''}"
        brackets = ("{", "}") if is_dict else ("[", "]")
        children = "".join(
            f"<li>{_tree_node(str(k) if is_dict else None, v, depth + 1, budget)}</li>"
            for k, v in items
        )
        is_open = " open" if depth < TREE_OPEN_DEPTH and len(value) <= 50 else ""
        return (
            f"<details{is_open}><summary>{label}{brackets[0]}"
            f'<span class="j-size">{size}</span>{brackets[1]}</summary>'
            f'<ul class="j-children">{children}</ul></details>'
        )
    if isinstance(value, dict | list):
        return f'{label}<span class="j-empty">{"{}" if isinstance(value, dict) else "[]"}</span>'
    return f"{label}{_tree_scalar(value)}"


def _count_nodes(value: Any, limit: int) -> int:
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


@register.simple_tag
def json_view(value: Any, name: str) -> str:
    """JSON as a tree of <details> (folds without JavaScript), with Copy and Raw. `name` makes
    the ids unique on the page ("input", "output")."""
    raw = pretty_json(value)
    raw_id = f"json-raw-{name}"
    too_big = _count_nodes(value, TREE_MAX_NODES) > TREE_MAX_NODES
    tree = (
        ""
        if too_big or not isinstance(value, dict | list)
        else f'<div class="j-tree" id="json-tree-{escape(name)}">'
        f"{_tree_node(None, value, 0, [TREE_MAX_NODES])}</div>"
    )
    raw_open = " open" if not tree else ""
    return mark_safe(  # noqa: S308 - keys, values and raw text all went through escape()
        f'<div class="json-view">'
        f'<div class="json-tools"><button type="button" class="btn btn-small js-only" '
        f'data-copy-text="#{raw_id}">Copy<span class="sr-only"> {escape(name)}</span></button></div>'
        f"{tree}"
        f'<details class="json-raw"{raw_open}><summary>Raw</summary>'
        f'<pre class="code" id="{raw_id}">{escape(raw)}</pre></details></div>'
    )


@register.simple_tag
def elapsed(since: dt.datetime | None) -> str:
    """Time since `since` as "1:05" or "2:03:09" (ticked every second by studio.js)."""
    if since is None:
        return ""
    seconds = max(0, int((timezone.now() - since).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.simple_tag
def span_ms(start: dt.datetime | None, end: dt.datetime | None) -> int | None:
    """Milliseconds from `start` to `end` (all attempts of a retried run, waits included)."""
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


SECTION_ROLES = {"tokens": "admin"}


@register.simple_tag
def switch_url(project, role: str, nav: str | None) -> str:
    """The same section in another project (its list page), else that project's overview."""
    from django.urls import NoReverseMatch, reverse

    from ..permissions import RANK

    needed = SECTION_ROLES.get(nav or "")
    if nav and nav != "overview" and (needed is None or RANK[role] >= RANK[needed]):
        try:
            return reverse(f"dashboard:{nav}", args=[project.slug])
        except NoReverseMatch:
            pass
    return reverse("dashboard:overview", args=[project.slug])
