"""Run notifications: an outbox written with the terminal transition, delivered by workers.

- `queue_notifications(run)` is the lifecycle's in-transaction terminal hook: it writes one
  outbox row per matching target in the same transaction as the status change, so a finished
  run is never without its notification, and a rolled-back one never has one.
- `NotifierThread` (one per worker process) sends due rows: at least once, oldest first per
  target (a newer notification waits while an older one to the same target is still pending),
  each attempt recorded, retried with backoff (first retry after 10 s) for 24 hours.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connection
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from . import signing
from .models import (
    TERMINAL_STATUSES,
    NotificationAttempt,
    NotificationOutbox,
    NotificationTarget,
    Project,
    Run,
    RunStatus,
)

log = logging.getLogger(__name__)

# Seconds before retry n (1-based); the last one repeats. A receiver down for an hour still
# gets its notifications; after STUDIO_NOTIFY_GIVE_UP_HOURS the row is given up.
BACKOFF = (10, 30, 60, 120, 300, 600, 900, 1800, 3600)
USER_AGENT = "Studio-Notifications/1"


# --- what a run's ending means ----------------------------------------------------------------


def outcomes_for(run: Run) -> list[str]:
    """The outcomes a terminal run counts as: a timeout is both `timed_out` and `failed`; a
    success right after a failure of the same target is also `recovered`."""
    if run.status == RunStatus.CANCELLED:
        return ["cancelled"]
    if run.status == RunStatus.FAILED:
        code = (run.error or {}).get("code") if isinstance(run.error, dict) else None
        return ["failed", "timed_out"] if code == "timeout" else ["failed"]
    if run.status == RunStatus.COMPLETED:
        previous = (
            Run.objects.filter(
                project_id=run.project_id,
                target=run.target,
                status__in=(RunStatus.COMPLETED, RunStatus.FAILED),
                created_at__lt=run.created_at,
            )
            .exclude(pk=run.pk)
            .order_by("-created_at")
            .values_list("status", flat=True)
            .first()
        )
        return ["completed", "recovered"] if previous == RunStatus.FAILED else ["completed"]
    return []


def target_matches(target: NotificationTarget, run: Run, outcomes: list[str]) -> bool:
    if not target.enabled:
        return False
    if run.parent_run_id and not target.include_children:
        return False
    if target.targets:
        names = {run.target}
        if run.workflow_id:
            names.add(f"workflow:{run.workflow_id}")
        if not names & set(target.targets):
            return False
    wanted = set(target.outcomes or ["failed"])
    return bool(wanted & set(outcomes))


def dashboard_url(project: Project, run_id: str | None = None) -> str:
    if run_id:
        path = reverse("dashboard:run", args=[project.slug, run_id])
    else:
        path = reverse("dashboard:overview", args=[project.slug])
    return settings.STUDIO_BASE_URL + path


# The API's serializer of a Run (runs.api.schemas.run_to_wire), handed in by RunsConfig.ready():
# the wire shape belongs to the API layer, which this module (used by workers, the admin and
# the dashboard) must not import.
_run_to_wire: Callable[[Run], dict] | None = None


def use_wire_format(run_to_wire: Callable[[Run], dict]) -> None:
    global _run_to_wire
    _run_to_wire = run_to_wire


def run_payload(run: Run, project: Project, event: str, outcomes: list[str]) -> dict:
    """The JSON body: the run in the wire shape, plus its project and a dashboard link."""
    if _run_to_wire is None:
        raise RuntimeError("runs.notify.use_wire_format() was not called (RunsConfig.ready does)")
    wire = json.loads(json.dumps(_run_to_wire(run), cls=DjangoJSONEncoder))
    return {
        "event": event,
        "outcomes": outcomes,
        "project": {"id": str(project.id), "slug": project.slug, "name": project.name},
        "dashboard_url": dashboard_url(project, run.pk),
        "run": wire,
    }


_HAS_TARGETS_SQL: str | None = None


def has_targets(run: Run) -> bool:
    """Whether the run's project has an enabled notification target: the test every terminal
    transition runs before `queue_notifications`, so one indexed lookup, without the ORM."""
    global _HAS_TARGETS_SQL
    if _HAS_TARGETS_SQL is None:
        meta = NotificationTarget._meta
        quote = connection.ops.quote_name
        _HAS_TARGETS_SQL = (
            f"SELECT 1 FROM {quote(meta.db_table)} WHERE "
            f"{quote(meta.get_field('project').column)} = %s AND "
            f"{quote(meta.get_field('enabled').column)} LIMIT 1"
        )
    project = NotificationTarget._meta.get_field("project").target_field
    with connection.cursor() as cursor:
        cursor.execute(_HAS_TARGETS_SQL, [project.get_db_prep_value(run.project_id, connection)])
        return cursor.fetchone() is not None


def has_targets_sql() -> str:
    """`has_targets` as a SQL condition on the run's row (the runs table by its name), so that
    a run's ending can be written in one statement when its project has no target."""
    meta = NotificationTarget._meta
    quote = connection.ops.quote_name
    return (
        f"EXISTS (SELECT 1 FROM {quote(meta.db_table)} t WHERE "
        f"t.{quote(meta.get_field('project').column)} = "
        f"{quote(Run._meta.db_table)}.{quote(Run._meta.get_field('project').column)} "
        f"AND t.{quote(meta.get_field('enabled').column)})"
    )


def queue_notifications(run: Run) -> int:
    """The in-transaction terminal hook: one outbox row per target that wants this outcome."""
    targets = list(NotificationTarget.objects.filter(project_id=run.project_id, enabled=True))
    if not targets:
        return 0
    outcomes = outcomes_for(run)
    matching = [t for t in targets if target_matches(t, run, outcomes)]
    if not matching:
        return 0
    project = Project.objects.get(pk=run.project_id)
    payload = run_payload(run, project, f"run.{run.status}", outcomes)
    now = timezone.now()
    NotificationOutbox.objects.bulk_create(
        NotificationOutbox(
            target=t,
            project_id=run.project_id,
            run_id=run.pk,
            event=payload["event"],
            outcomes=outcomes,
            payload=payload,
            next_attempt_at=now,
            created_at=now,
        )
        for t in matching
    )
    return len(matching)


def queue_test(target: NotificationTarget) -> NotificationOutbox:
    """A test notification to `target`, with the project's latest finished run if it has one."""
    project = target.project
    run = (
        Run.objects.filter(project=project, status__in=TERMINAL_STATUSES)
        .order_by("-created_at")
        .first()
    )
    if run is not None:
        outcomes = outcomes_for(run)
        payload = run_payload(run, project, "test", outcomes)
    else:
        outcomes = []
        payload = {
            "event": "test",
            "outcomes": [],
            "project": {"id": str(project.id), "slug": project.slug, "name": project.name},
            "dashboard_url": dashboard_url(project),
            "run": None,
        }
    return NotificationOutbox.objects.create(
        target=target,
        project=project,
        run=run,
        event="test",
        outcomes=outcomes,
        payload=payload,
        test=True,
        # Leased to the caller, who sends it at once; workers only retry it if that fails.
        next_attempt_at=timezone.now() + timedelta(seconds=60),
    )


# --- where a notification may go -----------------------------------------------------------------


def url_problem(url: str, *, resolve: bool = True) -> str | None:
    """Why `url` may not receive notifications, or None. Refuses anything that is not http(s),
    and (unless STUDIO_NOTIFY_ALLOW_PRIVATE_URLS) hosts that resolve to loopback, private,
    link-local or otherwise internal addresses, so notifications cannot probe the inside."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL"
    if parts.username or parts.password:
        return "must not carry a user name or password"
    if settings.STUDIO_NOTIFY_ALLOW_PRIVATE_URLS:
        return None
    host = parts.hostname
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return None
        try:
            infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return f"host {host!r} does not resolve"
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            return (
                f"resolves to {address}, an internal address "
                "(set STUDIO_NOTIFY_ALLOW_PRIVATE_URLS=true to allow)"
            )
    return None


# --- sending ------------------------------------------------------------------------------------


def slack_message(payload: dict) -> dict:
    run = payload.get("run")
    project = payload["project"]["name"]
    if run is None:
        return {
            "text": f"Test notification from Studio for {project}: <{payload['dashboard_url']}|open>"
        }
    outcome = payload["outcomes"][-1] if payload["outcomes"] else run["status"]
    if "timed_out" in payload["outcomes"]:
        outcome = "timed out"
    icon = {
        "completed": ":white_check_mark:",
        "recovered": ":white_check_mark:",
        "cancelled": ":no_entry_sign:",
    }.get(outcome, ":x:")
    test = "[test] " if payload["event"] == "test" else ""
    lines = [
        f"{test}{icon} Run of `{run['target']}` {outcome} in {project}: "
        f"<{payload['dashboard_url']}|{run['run_id']}>"
    ]
    if run.get("error") and run["error"].get("message"):
        lines.append(f"> {run['error']['message'][:500]}")
    return {"text": "\n".join(lines)}


def _request(outbox: NotificationOutbox) -> tuple[bytes, dict[str, str]]:
    target = outbox.target
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if target.kind == NotificationTarget.Kind.SLACK:
        return json.dumps(slack_message(outbox.payload)).encode(), headers
    body = json.dumps(outbox.payload, separators=(",", ":")).encode()
    secret = target.secret
    if secret:
        headers[signing.SIGNATURE_HEADER] = signing.sign_studio(secret, body)
    headers[signing.DELIVERY_HEADER] = str(outbox.delivery_id)
    headers[signing.EVENT_HEADER] = outbox.event
    return body, headers


def retry_delay(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt."""
    step = BACKOFF[min(attempts, len(BACKOFF)) - 1]
    return step * settings.STUDIO_NOTIFY_RETRY_SCALE


def attempt(outbox: NotificationOutbox, client: httpx.Client | None = None) -> bool:
    """Send `outbox` once, record the attempt and its consequences; True if delivered."""
    target = outbox.target
    started = time.monotonic()
    status_code = None
    error = url_problem(target.url)
    if error is None:
        body, headers = _request(outbox)
        try:
            own = client is None
            client = client or httpx.Client(
                timeout=settings.STUDIO_NOTIFY_TIMEOUT_SECONDS, follow_redirects=False
            )
            try:
                response = client.post(target.url, content=body, headers=headers)
            finally:
                if own:
                    client.close()
            status_code = response.status_code
            if not response.is_success:
                error = f"HTTP {status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    else:
        error = f"URL refused: {error}"
    ok = error is None
    now = timezone.now()
    NotificationAttempt.objects.create(
        outbox=outbox,
        attempted_at=now,
        status_code=status_code,
        ok=ok,
        error=(error or "")[:500],
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    attempts = outbox.attempts + 1
    if ok:
        NotificationOutbox.objects.filter(pk=outbox.pk).update(
            state=NotificationOutbox.State.DELIVERED,
            attempts=attempts,
            delivered_at=now,
            last_error="",
        )
        NotificationTarget.objects.filter(pk=target.pk).update(
            consecutive_failures=0, failing_since=None, last_success_at=now
        )
        return True
    give_up = now - outbox.created_at >= timedelta(hours=settings.STUDIO_NOTIFY_GIVE_UP_HOURS)
    NotificationOutbox.objects.filter(pk=outbox.pk).update(
        state=NotificationOutbox.State.GAVE_UP if give_up else NotificationOutbox.State.PENDING,
        attempts=attempts,
        next_attempt_at=now + timedelta(seconds=retry_delay(attempts)),
        last_error=(error or "")[:500],
    )
    NotificationTarget.objects.filter(pk=target.pk).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    NotificationTarget.objects.filter(pk=target.pk, failing_since__isnull=True).update(
        failing_since=now
    )
    log.info("notification %s to %s failed: %s", outbox.pk, target.pk, error)
    return False


def _claim(row: NotificationOutbox, now) -> bool:
    """Lease a due row by moving its next_attempt_at; 0 rows means another worker has it."""
    lease = now + timedelta(seconds=settings.STUDIO_NOTIFY_TIMEOUT_SECONDS + 30)
    return bool(
        NotificationOutbox.objects.filter(
            pk=row.pk, state=NotificationOutbox.State.PENDING, next_attempt_at=row.next_attempt_at
        ).update(next_attempt_at=lease)
    )


def deliver_due(limit: int = 100, client: httpx.Client | None = None) -> int:
    """Send what is due now, oldest first per target; return how many were attempted."""
    now = timezone.now()
    pending = NotificationOutbox.objects.filter(state=NotificationOutbox.State.PENDING)
    # A disabled target's notifications wait (and go out if it is enabled again in time).
    due = list(
        pending.filter(next_attempt_at__lte=now, target__enabled=True)
        .select_related("target")
        .order_by("id")[:limit]
    )
    sent = 0
    blocked: set = set()
    for row in due:
        if row.target_id in blocked:
            continue
        # Order per target: nothing overtakes an older notification that is still pending.
        if pending.filter(target_id=row.target_id, id__lt=row.id).exists():
            blocked.add(row.target_id)
            continue
        if not _claim(row, now):
            blocked.add(row.target_id)
            continue
        sent += 1
        if not attempt(row, client):
            blocked.add(row.target_id)
    return sent


class NotifierThread(threading.Thread):
    """Delivers the outbox from a worker process until `stop` is set."""

    def __init__(self, stop: threading.Event, interval: float | None = None):
        super().__init__(name="studio-notifier", daemon=True)
        self.stop_event = stop
        self.interval = interval or settings.STUDIO_NOTIFY_POLL_SECONDS

    def run(self) -> None:
        with httpx.Client(
            timeout=settings.STUDIO_NOTIFY_TIMEOUT_SECONDS, follow_redirects=False
        ) as client:
            while not self.stop_event.is_set():
                try:
                    close_old_connections()
                    while deliver_due(client=client) and not self.stop_event.is_set():
                        pass
                except Exception:
                    log.exception("notification delivery failed; trying again shortly")
                finally:
                    close_old_connections()
                self.stop_event.wait(self.interval)


def describe(target: NotificationTarget) -> dict[str, Any]:
    """A target as the API shows it (never its secret)."""
    return {
        "id": str(target.id),
        "name": target.name,
        "kind": target.kind,
        "url": target.url,
        "targets": target.targets,
        "outcomes": target.outcomes,
        "include_children": target.include_children,
        "enabled": target.enabled,
        "failing": target.is_failing,
        "consecutive_failures": target.consecutive_failures,
        "failing_since": target.failing_since,
        "last_success_at": target.last_success_at,
        "created_at": target.created_at,
        "updated_at": target.updated_at,
    }
