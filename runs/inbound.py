"""Receiving a webhook: verify, parse, filter, deduplicate, start a run, record the delivery.

Order matters for what an unauthenticated sender can learn: an unknown or disabled webhook is
404 before anything is read; an oversize body is 413 before it is read; then the signature is
checked over the raw bytes (401, the same answer whatever part failed); only a verified request
learns about content types (415), JSON (400), the filter (200) and the input schema (422).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from . import service, signing
from .event_filter import matches
from .models import Project, Run, Webhook, WebhookDelivery
from .webhooks import sync_file_webhooks

# Project slugs and webhook ids; anything else names nothing (and never reaches the database).
SLUG_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")

log = logging.getLogger(__name__)

DELIVERY_HEADERS = ("x-studio-delivery", "x-github-delivery")
EVENT_HEADERS = ("x-github-event", "x-studio-event", "x-gitlab-event", "x-event-type")
SAFE_KEY_RE = re.compile(r"[A-Za-z0-9._:-]{1,100}")
BODY_DEDUPE_WINDOW = timedelta(hours=24)
# Never stored with a delivery: credentials, and signatures (which would help a replay).
REDACTED_HEADERS = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-studio-signature",
    "x-hub-signature-256",
    "x-hub-signature",
}
_SECRETISH = re.compile(r"secret|token|password|api-?key|signature", re.I)


@dataclass
class Answer:
    status: int
    body: dict
    run: Run | None = field(default=None, repr=False)
    delivery: WebhookDelivery | None = field(default=None, repr=False)


def _error(status: int, message: str, code: str, detail: Any = None) -> Answer:
    return Answer(status, {"error": {"message": message, "code": code, "detail": detail}})


def _lower_headers(request: HttpRequest) -> dict[str, str]:
    # No database stores NUL in text; a crafted header must not turn a delivery into a 500.
    return {k.lower(): v.replace("\x00", "\ufffd") for k, v in request.headers.items()}


def _stored_headers(headers: dict[str, str], webhook: Webhook) -> dict[str, str]:
    secret_header = webhook.header_name.lower() if webhook.header_name else None
    kept = {}
    for name, value in headers.items():
        if name in REDACTED_HEADERS or name == secret_header or _SECRETISH.search(name):
            kept[name] = "[redacted]"
        else:
            kept[name] = value[:1000]
    return kept


def receive(request: HttpRequest, project_slug: str, webhook_slug: str) -> Answer:
    project = webhook = None
    if SLUG_RE.fullmatch(project_slug) and SLUG_RE.fullmatch(webhook_slug):
        project = Project.objects.filter(slug=project_slug).first()
    if project is not None:
        sync_file_webhooks(project)
        webhook = Webhook.objects.filter(project=project, slug=webhook_slug, enabled=True).first()
    if webhook is None:
        return _error(404, "no such webhook", "not_found")

    headers = _lower_headers(request)
    limit = settings.STUDIO_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    body = b"" if declared > limit else request.read(limit + 1)
    if declared > limit or len(body) > limit:
        answer = _error(413, f"request body is larger than {limit} bytes", "body_too_large")
        _record_unverified(webhook, headers, answer, max(declared, len(body)))
        return answer

    if not verify(webhook, headers, body):
        answer = _error(401, "missing or invalid signature", "unauthorized")
        _record_unverified(webhook, headers, answer, len(body))
        return answer

    return process(webhook, headers, body, content_type=request.content_type or "")


def verify(webhook: Webhook, headers: dict[str, str], body: bytes) -> bool:
    secrets_ = webhook.verifying_secrets()
    if not secrets_:
        return False
    if webhook.scheme == Webhook.Scheme.STUDIO:
        return signing.verify_studio(secrets_, headers.get("x-studio-signature"), body)
    if webhook.scheme == Webhook.Scheme.GITHUB:
        return signing.verify_github(secrets_, headers.get("x-hub-signature-256"), body)
    return signing.verify_shared(secrets_, headers.get(webhook.header_name.lower()))


def parse_payload(body: bytes, content_type: str) -> tuple[Any, Answer | None]:
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/json" or (
        ctype.startswith("application/") and ctype.endswith("+json")
    ):
        raw = body
    elif ctype == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=1000)
        except (UnicodeDecodeError, ValueError):
            fields = {}
        if "payload" not in fields:
            return None, _error(
                415,
                "a form-encoded body must carry JSON in a `payload` field",
                "unsupported_media_type",
            )
        raw = fields["payload"][0].encode()
    else:
        return None, _error(
            415,
            "send JSON (application/json), or a form with a `payload` field holding JSON",
            "unsupported_media_type",
        )
    try:
        return json.loads(raw, parse_constant=_refuse_constant), None
    except (ValueError, RecursionError) as exc:
        return None, _error(400, f"payload is not valid JSON: {exc}", "malformed_json")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def process(
    webhook: Webhook,
    headers: dict[str, str],
    body: bytes,
    *,
    content_type: str,
    verification: str = WebhookDelivery.Verification.VERIFIED,
    redelivery: bool = False,
) -> Answer:
    """What happens to a verified (or re-delivered) request: filter, dedupe, run, record."""
    delivery_id = next((headers[h] for h in DELIVERY_HEADERS if headers.get(h)), "")
    event = next((headers[h] for h in EVENT_HEADERS if headers.get(h)), "")
    record = WebhookDelivery(
        webhook=webhook,
        project_id=webhook.project_id,
        verification=verification,
        delivery_id=delivery_id[:200],
        event=event[:200],
        content_type=content_type[:200],
        headers=_stored_headers(headers, webhook),
        body_size=len(body),
    )
    cap = settings.STUDIO_WEBHOOK_BODY_CAP
    text = body[:cap].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    record.body, record.body_truncated = text, len(body) > cap

    payload, problem = parse_payload(body, content_type)
    if problem is None and not isinstance(payload, dict):
        problem = _error(
            422,
            "payload must be a JSON object",
            "invalid_input",
            [{"field": "payload", "message": "must be a JSON object", "rule": "type"}],
        )
    if problem is not None:
        return _finish(record, problem)

    if not matches(webhook.event_filter, payload, headers):
        record.filter_result = WebhookDelivery.FilterResult.FILTERED
        return _finish(record, Answer(200, {"accepted": False, "reason": "filtered"}))
    record.filter_result = WebhookDelivery.FilterResult.MATCHED

    try:
        public_id = _public_id(webhook, headers, body, delivery_id, redelivery)
    except _Duplicate as dup:
        record.run, record.duplicate = dup.run, True
        return _finish(record, _accepted(dup.run, duplicate=True))

    as_input = webhook.payload_to == Webhook.PayloadTo.INPUT or webhook.target.startswith(
        "workflow:"
    )
    metadata = {"webhook": {"id": webhook.slug, "delivery_id": delivery_id or None}}
    if event:
        metadata["webhook"]["event"] = event
    try:
        result = service.create_run(
            webhook.project,
            target=webhook.target,
            input=payload if as_input else {},
            config={} if as_input else payload,
            public_id=public_id,
            trigger_kind=Run.Trigger.WEBHOOK,
            trigger_id=webhook.slug,
            created_by=f"webhook:{webhook.slug}",
            metadata=metadata,
        )
    except service.RunError as exc:
        detail = [e.as_dict() for e in exc.errors] or None
        return _finish(record, _error(exc.status, exc.message, exc.code, detail))
    record.run, record.duplicate = result.run, result.duplicate
    return _finish(record, _accepted(result.run, duplicate=result.duplicate))


class _Duplicate(Exception):
    def __init__(self, run: Run):
        self.run = run


def _public_id(
    webhook: Webhook, headers: dict[str, str], body: bytes, delivery_id: str, redelivery: bool
) -> str:
    """`webhook:<id>:<key>`: the key that makes a repeat of one delivery start no second run."""
    base = f"webhook:{webhook.slug}:"
    if redelivery:
        return base + f"redelivery-{hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:24]}"
    if webhook.scheme == Webhook.Scheme.STUDIO:
        # Bound to the signed bytes: X-Studio-Delivery is not signed, so a replay with a fresh
        # delivery id inside the tolerance must still land on the same run.
        parsed = signing.parse_studio_header(headers.get("x-studio-signature", ""))
        stamp = parsed[0] if parsed else 0
        return base + hashlib.sha256(f"{stamp}.".encode() + body).hexdigest()
    if delivery_id:
        key = (
            delivery_id
            if SAFE_KEY_RE.fullmatch(delivery_id)
            else hashlib.sha256(delivery_id.encode()).hexdigest()
        )
        return base + key
    # No delivery id (a `header` or `github` sender without one): the same body within 24 hours
    # is a repeat; after that it starts a run again, under a public_id of its own.
    key = base + "body-" + hashlib.sha256(body).hexdigest()
    recent = (
        Run.objects.filter(
            project_id=webhook.project_id,
            public_id__startswith=key,
            created_at__gte=timezone.now() - BODY_DEDUPE_WINDOW,
        )
        .order_by("-created_at")
        .first()
    )
    if recent is not None:
        raise _Duplicate(recent)
    if Run.objects.filter(project_id=webhook.project_id, public_id=key).exists():
        return f"{key}:{int(time.time())}"
    return key


def _accepted(run: Run, *, duplicate: bool) -> Answer:
    body: dict = {"accepted": True}
    if duplicate:
        body["duplicate"] = True
    # The view adds "run" in the wire shape (the API's serializer lives above this module).
    return Answer(202, body, run=run)


def _finish(record: WebhookDelivery, answer: Answer) -> Answer:
    record.status_code = answer.status
    if "error" in answer.body:
        record.message = answer.body["error"]["message"][:500]
    elif answer.body.get("reason"):
        record.message = answer.body["reason"]
    record.save(force_insert=True)
    answer.delivery = record
    return answer


def _record_unverified(
    webhook: Webhook, headers: dict[str, str], answer: Answer, size: int
) -> None:
    """Recorded without its body, and at most so many a minute per webhook (a public URL must
    not be a way to fill the database); the rest are only counted."""
    recent = WebhookDelivery.objects.filter(
        webhook=webhook,
        verification=WebhookDelivery.Verification.FAILED,
        received_at__gte=timezone.now() - timedelta(minutes=1),
    ).count()
    if recent >= settings.STUDIO_WEBHOOK_FAILED_RECORDS_PER_MINUTE:
        Webhook.objects.filter(pk=webhook.pk).update(
            unrecorded_failures=F("unrecorded_failures") + 1
        )
        return
    WebhookDelivery.objects.create(
        webhook=webhook,
        project_id=webhook.project_id,
        verification=WebhookDelivery.Verification.FAILED,
        status_code=answer.status,
        message=answer.body["error"]["message"][:500],
        delivery_id=next((headers[h] for h in DELIVERY_HEADERS if headers.get(h)), "")[:200],
        event=next((headers[h] for h in EVENT_HEADERS if headers.get(h)), "")[:200],
        content_type=headers.get("content-type", "")[:200],
        headers=_stored_headers(headers, webhook),
        body=None,
        body_size=size,
    )
