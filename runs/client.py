"""Python SDK for Studio's REST API. Needs only the standard library and httpx (no Django).

    from runs.client import RunsClient

    runs = RunsClient()  # STUDIO_API_URL, STUDIO_API_TOKEN, STUDIO_PROJECT
    accepted = runs.create_task_run(target="task:sync-data", config={"batchSize": 100})
    run = runs.wait(accepted.run.run_id, timeout=60)
    for event in runs.iter_events(run.run_id):
        print(event.event_id, event.event_type, event.payload)

Network errors, 429 and 5xx are retried (3 times, waiting 1 s, doubling up to 10 s); other 4xx
are not. Every failure raises RunsError carrying `status`, `code`, `message` and `detail`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

__all__ = [
    "Accepted",
    "CancelResult",
    "Event",
    "Operation",
    "Page",
    "PageInfo",
    "Project",
    "Run",
    "RunError",
    "RunOwner",
    "RunsClient",
    "RunsError",
    "RunsWaitTimeout",
    "Task",
    "TERMINAL_STATUSES",
]

DEFAULT_API_URL = "http://127.0.0.1:8000/api"
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class RunsError(Exception):
    """The API said no, or could not be reached. `status` is None when no answer came."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: Any = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no response"
        return f"{self.message} ({where}, code={self.code})"


class RunsWaitTimeout(RunsError, TimeoutError):
    """`wait()` gave up before the run finished. `run` is the last state seen."""

    def __init__(self, message: str, run: Run):
        super().__init__(message, code="wait_timeout")
        self.run = run


# --- Typed results ----------------------------------------------------------------------------


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class RunOwner:
    kind: str
    id: str


@dataclass(frozen=True)
class RunError:
    message: str | None
    code: str | None
    detail: Any = None


@dataclass(frozen=True)
class Run:
    run_id: str
    kind: str
    status: str
    owner: RunOwner
    parent_run_id: str | None
    root_run_id: str
    waiting_reason: str | None
    metadata: dict | None
    target: str | None
    workflow_id: str | None
    schedule_id: str | None
    batch_id: str | None
    runtime_target_kind: str | None
    runtime_target_environment_id: str | None
    runtime_target_branch_id: str | None
    input: Any
    config: Any
    output: Any
    error: RunError | None
    logs: str | None
    artifacts: list
    duration_ms: int | None
    exit_code: int | None
    start_mode: str | None
    timeout_seconds: int | None
    backoff_limit: int | None
    trigger_kind: str | None
    trigger_id: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_dict(cls, data: dict) -> Run:
        error = data.get("error")
        owner = data.get("owner") or {}
        return cls(
            run_id=data["run_id"],
            kind=data["kind"],
            status=data["status"],
            owner=RunOwner(kind=owner.get("kind", "project"), id=owner.get("id", "")),
            parent_run_id=data.get("parent_run_id"),
            root_run_id=data.get("root_run_id") or data["run_id"],
            waiting_reason=data.get("waiting_reason"),
            metadata=data.get("metadata"),
            target=data.get("target"),
            workflow_id=data.get("workflow_id"),
            schedule_id=data.get("schedule_id"),
            batch_id=data.get("batch_id"),
            runtime_target_kind=data.get("runtime_target_kind"),
            runtime_target_environment_id=data.get("runtime_target_environment_id"),
            runtime_target_branch_id=data.get("runtime_target_branch_id"),
            input=data.get("input"),
            config=data.get("config"),
            output=data.get("output"),
            error=RunError(error.get("message"), error.get("code"), error.get("detail"))
            if isinstance(error, dict)
            else None,
            logs=data.get("logs"),
            artifacts=data.get("artifacts") or [],
            duration_ms=data.get("duration_ms"),
            exit_code=data.get("exit_code"),
            start_mode=data.get("start_mode"),
            timeout_seconds=data.get("timeout_seconds"),
            backoff_limit=data.get("backoff_limit"),
            trigger_kind=data.get("trigger_kind"),
            trigger_id=data.get("trigger_id"),
            created_by=data.get("created_by"),
            created_at=_when(data["created_at"]),
            updated_at=_when(data["updated_at"]),
            started_at=_when(data.get("started_at")),
            completed_at=_when(data.get("completed_at")),
        )


@dataclass(frozen=True)
class Event:
    event_id: int
    event_type: str
    payload: Any
    created_at: datetime

    @classmethod
    def from_dict(cls, data: dict) -> Event:
        return cls(
            event_id=data["event_id"],
            event_type=data["event_type"],
            payload=data.get("payload"),
            created_at=_when(data["created_at"]),
        )


@dataclass(frozen=True)
class PageInfo:
    self: str | None = None
    first: str | None = None
    next: str | None = None
    prev: str | None = None

    @classmethod
    def from_dict(cls, data: dict | None) -> PageInfo:
        data = data or {}
        return cls(data.get("self"), data.get("first"), data.get("next"), data.get("prev"))


@dataclass(frozen=True)
class Page:
    """One page of a list: `data` (Run or Event objects) and `page_info` with the cursors."""

    data: list
    page_info: PageInfo = field(default_factory=PageInfo)

    def __iter__(self):
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Accepted:
    accepted: bool
    duplicate: bool
    run: Run


@dataclass(frozen=True)
class CancelResult:
    cancelled: bool
    run: Run


@dataclass(frozen=True)
class Project:
    id: str
    slug: str
    name: str


@dataclass(frozen=True)
class Task:
    id: str
    name: str
    description: str
    schedulable: bool
    input_schema: dict | None
    output_schema: dict | None

    @classmethod
    def from_dict(cls, data: dict) -> Task:
        return cls(
            id=data["id"],
            name=data["name"],
            description=data.get("description") or "",
            schedulable=bool(data.get("schedulable")),
            input_schema=data.get("input_schema"),
            output_schema=data.get("output_schema"),
        )


@dataclass(frozen=True)
class Operation:
    """A bulk cancel or re-run, and how far it got."""

    operation_id: str
    kind: str
    status: str  # pending, running or completed
    total: int
    processed: int
    succeeded: int
    skipped: int
    failed: int
    result: dict
    created_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_dict(cls, data: dict) -> Operation:
        return cls(
            operation_id=data["operation_id"],
            kind=data["kind"],
            status=data["status"],
            total=data["total"],
            processed=data["processed"],
            succeeded=data["succeeded"],
            skipped=data["skipped"],
            failed=data["failed"],
            result=data.get("result") or {},
            created_at=_when(data.get("created_at")),
            finished_at=_when(data.get("finished_at")),
        )


# --- The client -------------------------------------------------------------------------------


class RunsClient:
    """A client for one Studio project.

    `api_url`, `auth_token` and `project_reference` (slug or id) default to the environment
    variables STUDIO_API_URL, STUDIO_API_TOKEN and STUDIO_PROJECT.
    """

    def __init__(
        self,
        api_url: str | None = None,
        auth_token: str | None = None,
        project_reference: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        retry_delay: float = 1.0,
        max_retry_delay: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.api_url = (api_url or os.environ.get("STUDIO_API_URL") or DEFAULT_API_URL).rstrip("/")
        token = auth_token or os.environ.get("STUDIO_API_TOKEN")
        if not token:
            raise ValueError("no API token: pass auth_token= or set STUDIO_API_TOKEN")
        self.project_reference = project_reference or os.environ.get("STUDIO_PROJECT") or None
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self._sleep = sleep
        self._project_id: str | None = None
        self._http = httpx.Client(
            base_url=self.api_url + "/",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> RunsClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- HTTP ----------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        retry_server_errors: bool = True,
    ) -> Any:
        """Send one API request, retrying what may succeed on a second try; return its JSON.

        `retry_server_errors=False` is for writes that are not idempotent: a 5xx may come after
        the write happened, so only answers that prove nothing was done (429) and connection
        failures are retried.
        """
        params = {k: v for k, v in (params or {}).items() if v is not None}
        delay = self.retry_delay
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self._http.request(method, path.lstrip("/"), json=json, params=params)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if last or (sent and not retry_server_errors):
                    raise RunsError(
                        f"cannot reach {self.api_url}: {exc}", code="network_error"
                    ) from exc
            else:
                retryable = response.status_code == 429 or (
                    retry_server_errors and response.status_code in RETRYABLE_STATUSES
                )
                if response.is_success or last or not retryable:
                    return self._result(response)
                delay = max(delay, _retry_after(response))
            self._sleep(min(delay, self.max_retry_delay))
            delay = min(delay * 2, self.max_retry_delay)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _result(response: httpx.Response) -> Any:
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 204:
            return None
        if response.is_success:
            if body is None:
                raise RunsError(
                    "the API answered with something that is not JSON",
                    status=response.status_code,
                    code="bad_response",
                )
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            raise RunsError(
                str(error.get("message") or response.reason_phrase),
                status=response.status_code,
                code=error.get("code"),
                detail=error.get("detail"),
            )
        raise RunsError(
            f"HTTP {response.status_code} {response.reason_phrase}",
            status=response.status_code,
            code="http_error",
        )

    # -- Project -------------------------------------------------------------------------------

    def _project_ref(self) -> str:
        if not self.project_reference:
            raise ValueError("no project: pass project_reference= or set STUDIO_PROJECT")
        return self.project_reference

    def get_project(self) -> Project:
        data = self._request("GET", f"projects/{_seg(self._project_ref())}")
        self._project_id = data["id"]
        return Project(id=data["id"], slug=data["slug"], name=data["name"])

    def _owner_id(self, project_id: str | None) -> str:
        if project_id:
            return str(project_id)
        if self._project_id is None:
            self.get_project()
        return self._project_id

    # -- Runs ----------------------------------------------------------------------------------

    def create_task_run(
        self,
        *,
        target: str,
        project_id: str | None = None,
        name: str | None = None,
        input: dict | None = None,
        config: dict | None = None,
        public_id: str | None = None,
        parent_run_id: str | None = None,
        batch_id: str | None = None,
        timeout_seconds: int | None = None,
        backoff_limit: int | None = None,
        start_mode: str | None = None,
        runtime_target_kind: str | None = None,
    ) -> Accepted:
        """Start a run of `target` (`task:<id>`). Without `project_id`, the client's project.

        `runtime_target_kind` is Veryfront's; Studio accepts only "main_branch" (or None)."""
        request = {
            "runtime_target_kind": runtime_target_kind,
            "start_mode": start_mode,
            "name": name,
            "target": target,
            "input": input,
            "config": config,
            "batch_id": batch_id,
            "timeout_seconds": timeout_seconds,
            "backoff_limit": backoff_limit,
        }
        return self._create("task", project_id, public_id, parent_run_id, request)

    def create_workflow_run(
        self,
        *,
        workflow_id: str,
        project_id: str | None = None,
        target: str | None = None,
        input: dict | None = None,
        start_mode: str | None = None,
        public_id: str | None = None,
        parent_run_id: str | None = None,
    ) -> Accepted:
        """Start a run of workflow `workflow_id` (target `workflow:<workflow_id>`)."""
        request = {
            "workflow_id": workflow_id,
            "target": target,
            "input": input,
            "start_mode": start_mode,
        }
        return self._create("workflow", project_id, public_id, parent_run_id, request)

    def _create(self, kind, project_id, public_id, parent_run_id, request) -> Accepted:
        # A create is retried on 5xx too, so it always carries an idempotency key: a retry of a
        # create that did happen gets the same run back instead of starting a second one.
        key = public_id or f"sdk-{uuid.uuid4().hex}"
        body = {
            "kind": kind,
            "owner": {"kind": "project", "id": self._owner_id(project_id)},
            "public_id": key,
            "request": {k: v for k, v in request.items() if v is not None},
        }
        if parent_run_id:
            body["parent_run_id"] = parent_run_id
        data = self._request("POST", "runs", json=body)
        # The caller asked once; a duplicate of our own generated key is a retry, not a duplicate.
        duplicate = bool(data.get("duplicate")) and public_id is not None
        return Accepted(
            accepted=bool(data.get("accepted")), duplicate=duplicate, run=Run.from_dict(data["run"])
        )

    def get(self, run_id: str) -> Run:
        return Run.from_dict(self._request("GET", f"runs/{_seg(run_id)}"))

    def cancel(self, run_id: str) -> CancelResult:
        """Stop a run; `cancelled` is False when it had already finished."""
        data = self._request("POST", f"runs/{_seg(run_id)}/cancel")
        return CancelResult(cancelled=bool(data["cancelled"]), run=Run.from_dict(data["run"]))

    def rerun(self, run_id: str) -> Accepted:
        """A new run with the same target, input and config."""
        data = self._request("POST", f"runs/{_seg(run_id)}/rerun", retry_server_errors=False)
        return Accepted(
            accepted=bool(data.get("accepted")), duplicate=False, run=Run.from_dict(data["run"])
        )

    def list(
        self,
        limit: int = 50,
        cursor: str | None = None,
        fields: str | None = None,
        **filters: Any,
    ) -> Page:
        """One page of the project's runs, newest first. Filters: status, target, kind,
        trigger_kind, parent_run_id, created_after, created_before (datetime or ISO string).

        `fields="summary"` leaves each run's logs, input, output and config out (None)."""
        params = {"limit": limit, "cursor": cursor, "fields": fields}
        for key, value in filters.items():
            params[key] = value.isoformat() if isinstance(value, datetime) else value
        data = self._request("GET", f"projects/{_seg(self._project_ref())}/runs", params=params)
        return Page(
            [Run.from_dict(r) for r in data["data"]], PageInfo.from_dict(data.get("page_info"))
        )

    def iter_runs(
        self, limit: int = 50, fields: str | None = None, **filters: Any
    ) -> Iterator[Run]:
        """Every matching run, newest first, following the pages."""
        cursor = None
        while True:
            page = self.list(limit=limit, cursor=cursor, fields=fields, **filters)
            yield from page.data
            cursor = page.page_info.next
            if not cursor:
                return

    def events(
        self, run_id: str, after_event_id: int | None = None, limit: int | None = None
    ) -> Page:
        """One page of a run's events, oldest first, after `after_event_id`."""
        params = {"after_event_id": after_event_id, "limit": limit}
        return self._events_page(run_id, params)

    def _events_page(self, run_id: str, params: dict) -> Page:
        data = self._request("GET", f"runs/{_seg(run_id)}/events", params=params)
        return Page(
            [Event.from_dict(e) for e in data["data"]], PageInfo.from_dict(data.get("page_info"))
        )

    def iter_events(
        self, run_id: str, after_event_id: int | None = None, limit: int | None = None
    ) -> Iterator[Event]:
        """Every event of the run so far (after `after_event_id`), oldest first, page by page."""
        page = self.events(run_id, after_event_id=after_event_id, limit=limit)
        while True:
            yield from page.data
            if not page.page_info.next:
                return
            page = self._events_page(run_id, {"cursor": page.page_info.next, "limit": limit})

    def wait(self, run_id: str, timeout: float = 300.0, poll_interval: float = 0.5) -> Run:
        """Poll until the run is completed, failed or cancelled, and return it.

        Raises RunsWaitTimeout (also a TimeoutError) after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(run_id)
            if run.is_terminal:
                return run
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RunsWaitTimeout(f"run {run_id} still {run.status} after {timeout:g} s", run)
            self._sleep(min(poll_interval, remaining))

    # --- schedules ---------------------------------------------------------------------------
    # Schedules travel as plain dicts with the API's field names (see the API reference).

    def _schedules_path(self, schedule_id: str | None = None, action: str = "") -> str:
        path = f"projects/{_seg(self._project_ref())}/schedules"
        if schedule_id is not None:
            path += f"/{_seg(schedule_id)}"
        return path + (f"/{action}" if action else "")

    def list_schedules(self) -> list[dict]:
        return self._request("GET", self._schedules_path())["data"]

    def get_schedule(self, schedule_id: str) -> dict:
        return self._request("GET", self._schedules_path(schedule_id))

    def create_schedule(self, *, id: str, target: str, **fields: Any) -> dict:
        """Create a schedule: `cron=`, `interval_seconds=` or `run_at=`, plus any other field."""
        body = {"id": id, "target": target, **fields}
        return self._request("POST", self._schedules_path(), json=body, retry_server_errors=False)

    def update_schedule(self, schedule_id: str, **changes: Any) -> dict:
        return self._request("PATCH", self._schedules_path(schedule_id), json=changes)

    def delete_schedule(self, schedule_id: str) -> None:
        self._request("DELETE", self._schedules_path(schedule_id))

    def pause_schedule(self, schedule_id: str, note: str = "") -> dict:
        return self._request(
            "POST", self._schedules_path(schedule_id, "pause"), json={"note": note}
        )

    def resume_schedule(self, schedule_id: str) -> dict:
        return self._request("POST", self._schedules_path(schedule_id, "resume"))

    def trigger_schedule(self, schedule_id: str) -> Accepted:
        """Run the schedule's target now, outside its slots."""
        data = self._request(
            "POST", self._schedules_path(schedule_id, "trigger"), retry_server_errors=False
        )
        return Accepted(
            accepted=bool(data.get("accepted")), duplicate=False, run=Run.from_dict(data["run"])
        )

    def schedule_occurrences(
        self, schedule_id: str, limit: int = 50, cursor: str | None = None
    ) -> dict:
        """One page of the ledger, newest slot first: {"data": [...], "page_info": {...}}."""
        return self._request(
            "GET",
            self._schedules_path(schedule_id, "occurrences"),
            params={"limit": limit, "cursor": cursor},
        )

    def preview_schedule(self, schedule_id: str, count: int = 5) -> list[dict]:
        """The next `count` fire times, each {"utc": ..., "local": ...}."""
        return self._request(
            "GET", self._schedules_path(schedule_id, "preview"), params={"count": count}
        )["data"]

    # -- Tasks ---------------------------------------------------------------------------------

    def tasks(self) -> list[Task]:
        data = self._request("GET", f"projects/{_seg(self._project_ref())}/tasks")
        return [Task.from_dict(t) for t in data["data"]]

    def task(self, task_id: str) -> Task:
        return Task.from_dict(
            self._request("GET", f"projects/{_seg(self._project_ref())}/tasks/{_seg(task_id)}")
        )

    # --- webhooks and notifications -----------------------------------------------------------
    # Plain dicts in the API's shapes. A secret is only in the answers of create_webhook,
    # rotate_webhook_secret and create_notification (json targets): keep it then.

    def _project_path(self, *parts: str) -> str:
        return "/".join(["projects", _seg(self._project_ref()), *(_seg(p) for p in parts)])

    def webhooks(self, limit: int = 200) -> list[dict]:
        return self._request("GET", self._project_path("webhooks"), params={"limit": limit})["data"]

    def webhook(self, webhook_id: str) -> dict:
        return self._request("GET", self._project_path("webhooks", webhook_id))

    def create_webhook(self, *, id: str, target: str, **fields: Any) -> dict:
        """Create a webhook; returns {"webhook": {...}, "secret": "..."} (the only time)."""
        body = {"id": id, "target": target, **fields}
        return self._request(
            "POST", self._project_path("webhooks"), json=body, retry_server_errors=False
        )

    def update_webhook(self, webhook_id: str, **fields: Any) -> dict:
        return self._request("PATCH", self._project_path("webhooks", webhook_id), json=fields)

    def delete_webhook(self, webhook_id: str) -> None:
        self._request("DELETE", self._project_path("webhooks", webhook_id))

    def rotate_webhook_secret(self, webhook_id: str, overlap_seconds: int | None = None) -> dict:
        """A new secret; the old one verifies for `overlap_seconds` more (default a day)."""
        body = {} if overlap_seconds is None else {"overlap_seconds": overlap_seconds}
        return self._request(
            "POST",
            self._project_path("webhooks", webhook_id, "rotate-secret"),
            json=body,
            retry_server_errors=False,
        )

    def webhook_deliveries(
        self, webhook_id: str, limit: int = 50, cursor: str | None = None
    ) -> Page:
        data = self._request(
            "GET",
            self._project_path("webhooks", webhook_id, "deliveries"),
            params={"limit": limit, "cursor": cursor},
        )
        return Page(data["data"], PageInfo.from_dict(data.get("page_info")))

    def notifications(self, limit: int = 200) -> list[dict]:
        return self._request("GET", self._project_path("notifications"), params={"limit": limit})[
            "data"
        ]

    def notification(self, notification_id: str) -> dict:
        return self._request("GET", self._project_path("notifications", notification_id))

    def create_notification(self, *, url: str, kind: str = "json", **fields: Any) -> dict:
        """Add a target; returns {"notification": {...}, "secret": "..." or None for slack}."""
        body = {"url": url, "kind": kind, **fields}
        return self._request(
            "POST", self._project_path("notifications"), json=body, retry_server_errors=False
        )

    def update_notification(self, notification_id: str, **fields: Any) -> dict:
        return self._request(
            "PATCH", self._project_path("notifications", notification_id), json=fields
        )

    def delete_notification(self, notification_id: str) -> None:
        self._request("DELETE", self._project_path("notifications", notification_id))

    def notification_attempts(
        self, notification_id: str, limit: int = 50, cursor: str | None = None
    ) -> Page:
        data = self._request(
            "GET",
            self._project_path("notifications", notification_id, "attempts"),
            params={"limit": limit, "cursor": cursor},
        )
        return Page(data["data"], PageInfo.from_dict(data.get("page_info")))

    # --- workflows ----------------------------------------------------------------------------

    def workflows(self) -> list[dict]:
        """The project's workflows, each with its `graph` of nodes and edges."""
        return self._request("GET", f"projects/{_seg(self._project_ref())}/workflows")["data"]

    def workflow(self, workflow_id: str) -> dict:
        return self._request(
            "GET", f"projects/{_seg(self._project_ref())}/workflows/{_seg(workflow_id)}"
        )

    def steps(self, run_id: str) -> list[dict]:
        """A workflow run's steps in graph order: status, child run ids, output, error."""
        return self._request("GET", f"runs/{_seg(run_id)}/steps")["data"]

    def approvals(self, run_id: str) -> list[dict]:
        return self._request("GET", f"runs/{_seg(run_id)}/approvals")["data"]

    def approve(self, run_id: str, step_id: str, comment: str | None = None) -> dict:
        """Approve a pending approval step; a RunsError with code `already_decided` if it was
        decided before. Returns `{"approval": {...}, "run": Run}`."""
        return self._decide(run_id, step_id, True, comment)

    def reject(self, run_id: str, step_id: str, comment: str | None = None) -> dict:
        return self._decide(run_id, step_id, False, comment)

    def _decide(self, run_id: str, step_id: str, approved: bool, comment: str | None) -> dict:
        data = self._request(
            "POST",
            f"runs/{_seg(run_id)}/approvals/{_seg(step_id)}",
            json={"approved": approved, "comment": comment},
            retry_server_errors=False,
        )
        return {"approval": data["approval"], "run": Run.from_dict(data["run"])}

    def signal(self, run_id: str, event: str, payload: Any = None) -> bool:
        """Send `event` to a workflow run; a wait_for_event step for it takes the first one."""
        data = self._request(
            "POST",
            f"runs/{_seg(run_id)}/signal",
            json={"event": event, "payload": payload},
            retry_server_errors=False,
        )
        return bool(data.get("accepted"))

    def rerun_from_failed(self, run_id: str) -> Accepted:
        """A new workflow run reusing the steps that completed; the rest run again."""
        data = self._request(
            "POST", f"runs/{_seg(run_id)}/rerun", json={"from": "failed"}, retry_server_errors=False
        )
        return Accepted(
            accepted=bool(data.get("accepted")), duplicate=False, run=Run.from_dict(data["run"])
        )

    # --- operations ---------------------------------------------------------------------------
    # Bulk cancel and re-run, done in the background; follow them with get_operation().

    def cancel_runs(self, run_ids: list[str] | None = None, *, filter: dict | None = None) -> str:
        """Cancel the unfinished runs among `run_ids`, or all matching `filter` (the list's
        filters: status, target, kind, trigger_kind, created_after, ...). Returns the
        operation id."""
        return self._bulk("cancel", run_ids, filter)

    def rerun_runs(self, run_ids: list[str] | None = None, *, filter: dict | None = None) -> str:
        """Run again each of `run_ids`, or every run matching `filter`. Returns the operation id;
        the new run ids are in the finished operation's `result["new_run_ids"]`."""
        return self._bulk("rerun", run_ids, filter)

    def _bulk(self, kind: str, run_ids: list[str] | None, filter: dict | None) -> str:
        body: dict[str, Any] = {}
        if run_ids is not None:
            body["run_ids"] = list(run_ids)
        if filter is not None:
            body["filter"] = {
                k: v.isoformat() if isinstance(v, datetime) else v for k, v in filter.items()
            }
        data = self._request(
            "POST",
            f"projects/{_seg(self._project_ref())}/runs/{kind}",
            json=body,
            retry_server_errors=False,
        )
        return data["operation_id"]

    def get_operation(self, operation_id: str) -> Operation:
        data = self._request(
            "GET", f"projects/{_seg(self._project_ref())}/operations/{_seg(operation_id)}"
        )
        return Operation.from_dict(data)

    def wait_operation(
        self, operation_id: str, timeout: float = 300.0, poll_interval: float = 0.5
    ) -> Operation:
        """Poll until the operation is completed, and return it (RunsError on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            operation = self.get_operation(operation_id)
            if operation.status == "completed":
                return operation
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RunsError(
                    f"operation {operation_id} at {operation.processed}/{operation.total} "
                    f"after {timeout:g} s",
                    code="timeout",
                )
            self._sleep(min(poll_interval, remaining))


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", 0)))
    except ValueError:
        return 0.0


def _seg(value: str) -> str:
    """One URL path segment: an id can never step into another path."""
    return quote(str(value), safe="")
