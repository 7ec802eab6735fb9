"""The REST API for a project's inbound webhooks and run notifications.

Same auth, paging and error shapes as the runs API: the token's project is the only one there
is; reads need any token, writes a read-write one (TokenAuth answers 403 before the body is
read). A webhook's or a JSON target's secret is in the create (or rotate) answer only.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from django.db import IntegrityError, transaction
from ninja import Body, Field, Query, Router, Schema, Status
from pydantic import AfterValidator, StrictBool, StrictStr

from .. import notify
from ..models import NotificationAttempt, NotificationTarget, Project, Webhook, WebhookDelivery
from ..models.paging import InvalidCursor, page_by
from ..validation import storable_text
from ..webhook_files import SLUG_RE, TARGET_RE
from ..webhooks import apply, check_webhook, sync_file_webhooks, webhook_url
from . import READ_ERRORS, WRITE_ERRORS, ApiError, _field, _project
from .schemas import ErrorOut, PageInfo, StrictSchema

router = Router(tags=["webhooks and notifications"])

Text = Annotated[StrictStr, AfterValidator(storable_text)]
CONFLICT = {frozenset({409}): ErrorOut}


class Limit(Schema):
    cursor: str | None = Field(None, max_length=255, description="`page_info.next` of a page.")
    limit: int = Field(50, ge=1, le=200)


# --- Schemas ----------------------------------------------------------------------------------


class WebhookOut(Schema):
    id: str
    name: str
    description: str
    target: str
    event_filter: dict | None
    payload_to: str
    enabled: bool
    scheme: str
    header_name: str | None
    url: str
    source: str
    path: str | None
    secret_env: str | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookIn(StrictSchema):
    id: Text = Field(..., description="lowercase slug; the last part of the webhook's URL")
    target: Text = Field(..., description="task:<id> or workflow:<id>")
    name: Text | None = None
    description: Text | None = None
    event_filter: dict[str, Any] | None = None
    payload_to: Literal["config", "input"] | None = None
    enabled: StrictBool | None = None
    scheme: Literal["studio", "github", "header"] | None = None
    header_name: Text | None = None


class WebhookPatch(StrictSchema):
    target: Text | None = None
    name: Text | None = None
    description: Text | None = None
    event_filter: dict[str, Any] | None = None
    payload_to: Literal["config", "input"] | None = None
    enabled: StrictBool | None = None
    scheme: Literal["studio", "github", "header"] | None = None
    header_name: Text | None = None


class WebhookCreated(Schema):
    webhook: WebhookOut
    secret: str


class RotateIn(StrictSchema):
    overlap_seconds: int = Field(
        86400, ge=0, le=7 * 86400, description="how long the old secret keeps verifying"
    )


class WebhookList(Schema):
    data: list[WebhookOut]
    page_info: PageInfo


class DeliveryOut(Schema):
    id: str
    received_at: datetime
    verification: str
    filter_result: str | None
    status_code: int
    message: str
    run_id: str | None
    duplicate: bool
    delivery_id: str | None
    event: str | None
    content_type: str
    headers: dict
    body: str | None
    body_truncated: bool
    body_size: int


class DeliveryPage(Schema):
    data: list[DeliveryOut]
    page_info: PageInfo


Outcome = Literal["completed", "failed", "timed_out", "cancelled", "recovered"]


class NotificationOut(Schema):
    id: str
    name: str
    kind: str
    url: str
    targets: list[str]
    outcomes: list[str]
    include_children: bool
    enabled: bool
    failing: bool
    consecutive_failures: int
    failing_since: datetime | None
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime


class NotificationIn(StrictSchema):
    kind: Literal["json", "slack"] = "json"
    url: Text = Field(..., max_length=2000)
    name: Text | None = Field(None, max_length=200)
    targets: list[Text] = Field(default_factory=list, max_length=100)
    outcomes: list[Outcome] = Field(default_factory=lambda: ["failed"], min_length=1)
    include_children: StrictBool = False
    enabled: StrictBool = True


class NotificationPatch(StrictSchema):
    url: Text | None = Field(None, max_length=2000)
    name: Text | None = Field(None, max_length=200)
    targets: list[Text] | None = Field(None, max_length=100)
    outcomes: list[Outcome] | None = Field(None, min_length=1)
    include_children: StrictBool | None = None
    enabled: StrictBool | None = None


class NotificationCreated(Schema):
    notification: NotificationOut
    secret: str | None


class NotificationList(Schema):
    data: list[NotificationOut]
    page_info: PageInfo


class AttemptOut(Schema):
    id: int
    attempted_at: datetime
    ok: bool
    status_code: int | None
    error: str
    duration_ms: int
    notification_id: int
    delivery_id: str
    event: str
    run_id: str | None
    state: str
    test: bool


class AttemptPage(Schema):
    data: list[AttemptOut]
    page_info: PageInfo


# --- Helpers ----------------------------------------------------------------------------------


def webhook_to_wire(webhook: Webhook, project: Project) -> dict:
    return {
        "id": webhook.slug,
        "name": webhook.name,
        "description": webhook.description,
        "target": webhook.target,
        "event_filter": webhook.event_filter,
        "payload_to": webhook.payload_to,
        "enabled": webhook.enabled,
        "scheme": webhook.scheme,
        "header_name": webhook.header_name or None,
        "url": webhook_url(webhook, project),
        "source": webhook.source,
        "path": webhook.path or None,
        "secret_env": webhook.secret_env or None,
        "previous_secret_expires_at": webhook.previous_secret_expires_at
        if webhook.in_rotation
        else None,
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
    }


def delivery_to_wire(d: WebhookDelivery) -> dict:
    return {
        "id": str(d.id),
        "received_at": d.received_at,
        "verification": d.verification,
        "filter_result": d.filter_result,
        "status_code": d.status_code,
        "message": d.message,
        "run_id": d.run_id,
        "duplicate": d.duplicate,
        "delivery_id": d.delivery_id or None,
        "event": d.event or None,
        "content_type": d.content_type,
        "headers": d.headers,
        "body": d.body,
        "body_truncated": d.body_truncated,
        "body_size": d.body_size,
    }


def attempt_to_wire(a: NotificationAttempt) -> dict:
    return {
        "id": a.pk,
        "attempted_at": a.attempted_at,
        "ok": a.ok,
        "status_code": a.status_code,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "notification_id": a.outbox_id,
        "delivery_id": str(a.outbox.delivery_id),
        "event": a.outbox.event,
        "run_id": a.outbox.run_id,
        "state": a.outbox.state,
        "test": a.outbox.test,
    }


def _invalid(problems) -> ApiError:
    detail = [p.as_dict() if hasattr(p, "as_dict") else p for p in problems]
    message = "invalid request: " + "; ".join(f"{d['field']}: {d['message']}" for d in detail)
    return ApiError(422, message, code="validation_error", detail=detail)


def _webhook(request, ref: str, webhook_id: str) -> tuple[Project, Webhook]:
    project = _project(request, ref)
    sync_file_webhooks(project)
    webhook = None
    if SLUG_RE.fullmatch(webhook_id):
        webhook = Webhook.objects.filter(project=project, slug=webhook_id).first()
    if webhook is None:
        raise ApiError(404, f"no webhook {webhook_id!r}", code="not_found")
    return project, webhook


def _given(payload: Schema) -> dict:
    """The fields the client sent. null means "leave as is", except for event_filter (null
    removes the filter) and the texts (null empties them)."""
    data = payload.model_dump(exclude_unset=True)
    for key in ("name", "description", "header_name"):
        if key in data and data[key] is None:
            data[key] = ""
    return {k: v for k, v in data.items() if v is not None or k == "event_filter"}


def _editable(webhook: Webhook) -> None:
    if webhook.source == Webhook.Source.FILE:
        raise ApiError(
            409,
            f"webhook {webhook.slug!r} is defined in {webhook.path or 'a file'}: change the file",
            code="defined_in_file",
        )


def _page(queryset, stamp_field: str, cursor: str | None, limit: int) -> tuple[list, dict]:
    """Newest first by (stamp_field, pk); the cursor names the last item of a page."""
    try:
        return page_by(queryset, stamp_field, cursor, limit)
    except InvalidCursor:
        raise ApiError(
            422,
            "cursor is not one this API handed out",
            code="invalid_cursor",
            detail=_field("cursor", "is not a cursor from page_info", "cursor"),
        ) from None


# --- Webhooks ---------------------------------------------------------------------------------


@router.get(
    "/projects/{ref}/webhooks",
    response={200: WebhookList, **READ_ERRORS},
    summary="List a project's webhooks",
)
def list_webhooks(request, ref: str, query: Query[Limit]):
    project = _project(request, ref)
    sync_file_webhooks(project)
    rows, page_info = _page(
        Webhook.objects.filter(project=project), "created_at", query.cursor, query.limit
    )
    return {"data": [webhook_to_wire(w, project) for w in rows], "page_info": page_info}


@router.post(
    "/projects/{ref}/webhooks",
    response={201: WebhookCreated, **WRITE_ERRORS, **CONFLICT},
    summary="Create a webhook (the answer holds its secret, shown this once)",
)
def create_webhook(request, ref: str, payload: Body[WebhookIn]):
    project = _project(request, ref)
    data = _given(payload)
    problems = check_webhook(data)
    if problems:
        raise _invalid(problems)
    webhook = apply(Webhook(project=project, slug=data["id"]), data)
    webhook.name = webhook.name or data["id"]
    secret = webhook.set_secret()
    try:
        with transaction.atomic():
            webhook.save(force_insert=True)
    except IntegrityError:
        raise ApiError(
            409,
            f"a webhook with id {data['id']!r} already exists",
            code="conflict",
            detail=_field("id", "is taken", "unique"),
        ) from None
    return Status(201, {"webhook": webhook_to_wire(webhook, project), "secret": secret})


@router.get(
    "/projects/{ref}/webhooks/{webhook_id}",
    response={200: WebhookOut, **READ_ERRORS},
    summary="Get a webhook",
)
def get_webhook(request, ref: str, webhook_id: str):
    project, webhook = _webhook(request, ref, webhook_id)
    return webhook_to_wire(webhook, project)


@router.patch(
    "/projects/{ref}/webhooks/{webhook_id}",
    response={200: WebhookOut, **WRITE_ERRORS, **CONFLICT},
    summary="Change a webhook",
)
def patch_webhook(request, ref: str, webhook_id: str, payload: Body[WebhookPatch]):
    project, webhook = _webhook(request, ref, webhook_id)
    _editable(webhook)
    data = _given(payload)
    problems = check_webhook(data, instance=webhook)
    if problems:
        raise _invalid(problems)
    apply(webhook, data).save()
    return webhook_to_wire(webhook, project)


@router.delete(
    "/projects/{ref}/webhooks/{webhook_id}",
    response={204: None, **WRITE_ERRORS, **CONFLICT},
    summary="Delete a webhook and its delivery records",
)
def delete_webhook(request, ref: str, webhook_id: str):
    _, webhook = _webhook(request, ref, webhook_id)
    _editable(webhook)
    webhook.delete()
    return Status(204, None)


@router.post(
    "/projects/{ref}/webhooks/{webhook_id}/rotate-secret",
    response={200: WebhookCreated, **WRITE_ERRORS, **CONFLICT},
    summary="Issue a new secret; the old one keeps verifying for overlap_seconds",
)
def rotate_secret(request, ref: str, webhook_id: str, payload: Body[RotateIn | None] = None):
    project, webhook = _webhook(request, ref, webhook_id)
    _editable(webhook)
    overlap = payload.overlap_seconds if payload is not None else 86400
    secret = webhook.rotate_secret(timedelta(seconds=overlap))
    return {"webhook": webhook_to_wire(webhook, project), "secret": secret}


@router.get(
    "/projects/{ref}/webhooks/{webhook_id}/deliveries",
    response={200: DeliveryPage, **READ_ERRORS},
    summary="A webhook's recorded deliveries, newest first",
)
def list_deliveries(request, ref: str, webhook_id: str, query: Query[Limit]):
    _, webhook = _webhook(request, ref, webhook_id)
    rows, page_info = _page(webhook.deliveries.all(), "received_at", query.cursor, query.limit)
    return {"data": [delivery_to_wire(d) for d in rows], "page_info": page_info}


# --- Notifications ----------------------------------------------------------------------------


def check_notification(data: dict) -> list[dict]:
    problems = []
    if "url" in data:
        problem = notify.url_problem(data["url"])
        if problem:
            problems.append({"field": "url", "message": problem, "rule": "url"})
    for i, name in enumerate(data.get("targets") or []):
        if not TARGET_RE.fullmatch(name):
            problems.append(
                {
                    "field": f"targets.{i}",
                    "message": "must look like task:<id> or workflow:<id>",
                    "rule": "pattern",
                }
            )
    return problems


def _target(request, ref: str, notification_id: str) -> NotificationTarget:
    project = _project(request, ref)
    target = None
    try:
        target = NotificationTarget.objects.filter(
            project=project, pk=uuid.UUID(notification_id)
        ).first()
    except ValueError:
        pass
    if target is None:
        raise ApiError(404, f"no notification target {notification_id!r}", code="not_found")
    return target


@router.get(
    "/projects/{ref}/notifications",
    response={200: NotificationList, **READ_ERRORS},
    summary="List a project's notification targets",
)
def list_notifications(request, ref: str, query: Query[Limit]):
    project = _project(request, ref)
    rows, page_info = _page(
        NotificationTarget.objects.filter(project=project), "created_at", query.cursor, query.limit
    )
    return {"data": [notify.describe(t) for t in rows], "page_info": page_info}


@router.post(
    "/projects/{ref}/notifications",
    response={201: NotificationCreated, **WRITE_ERRORS},
    summary="Add a notification target (a json target's signing secret is shown this once)",
)
def create_notification(request, ref: str, payload: Body[NotificationIn]):
    project = _project(request, ref)
    data = payload.model_dump()
    problems = check_notification(data)
    if problems:
        raise _invalid(problems)
    target = NotificationTarget(project=project, **{**data, "name": data["name"] or ""})
    target.outcomes = sorted(set(target.outcomes), key=NotificationTarget.OUTCOMES.index)
    secret = target.set_secret() if target.kind == NotificationTarget.Kind.JSON else None
    target.save()
    return Status(201, {"notification": notify.describe(target), "secret": secret})


@router.get(
    "/projects/{ref}/notifications/{notification_id}",
    response={200: NotificationOut, **READ_ERRORS},
    summary="Get a notification target",
)
def get_notification(request, ref: str, notification_id: str):
    return notify.describe(_target(request, ref, notification_id))


@router.patch(
    "/projects/{ref}/notifications/{notification_id}",
    response={200: NotificationOut, **WRITE_ERRORS},
    summary="Change a notification target",
)
def patch_notification(request, ref: str, notification_id: str, payload: Body[NotificationPatch]):
    target = _target(request, ref, notification_id)
    data = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    problems = check_notification(data)
    if problems:
        raise _invalid(problems)
    for key, value in data.items():
        setattr(target, key, value)
    target.save()
    return notify.describe(target)


@router.delete(
    "/projects/{ref}/notifications/{notification_id}",
    response={204: None, **WRITE_ERRORS},
    summary="Delete a notification target and its history",
)
def delete_notification(request, ref: str, notification_id: str):
    _target(request, ref, notification_id).delete()
    return Status(204, None)


@router.get(
    "/projects/{ref}/notifications/{notification_id}/attempts",
    response={200: AttemptPage, **READ_ERRORS},
    summary="Delivery attempts to a target, newest first",
)
def list_attempts(request, ref: str, notification_id: str, query: Query[Limit]):
    target = _target(request, ref, notification_id)
    rows, page_info = _page(
        NotificationAttempt.objects.filter(outbox__target=target).select_related("outbox"),
        "attempted_at",
        query.cursor,
        query.limit,
    )
    return {"data": [attempt_to_wire(a) for a in rows], "page_info": page_info}
