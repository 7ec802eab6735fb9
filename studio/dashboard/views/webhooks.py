"""Inbound webhooks of a project: members read, admins manage.

A new or rotated secret is put in the session and the browser is redirected (POST, redirect,
GET): the page that shows it pops it, so a reload or the back button never shows it again.
"""

from __future__ import annotations

import json
import shlex
import uuid
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from runs import inbound, signing
from runs.definitions import discover
from runs.models import Webhook, WebhookDelivery
from runs.webhook_files import SLUG_RE
from runs.webhooks import apply, sync_file_webhooks, webhook_url

from ..permissions import Role, get_access
from ..rendering import render_blocks
from ..webhook_forms import WebhookForm

SECRET_SESSION_KEY = "webhook-secret:{pk}"
DELIVERIES_SHOWN = 50


def _webhook(access, webhook_id: str) -> Webhook:
    sync_file_webhooks(access.project)
    webhook = None
    if SLUG_RE.fullmatch(webhook_id):
        webhook = Webhook.objects.filter(project=access.project, slug=webhook_id).first()
    if webhook is None:
        raise Http404("no such webhook")
    return webhook


def _known_targets() -> list[str]:
    return sorted(d.target for d in discover().tasks.values())


def _editable_or_message(request, webhook: Webhook) -> bool:
    if webhook.source == Webhook.Source.FILE:
        messages.error(
            request, f"“{webhook.slug}” is defined in {webhook.path or 'a file'}: change the file."
        )
        return False
    return True


@login_required
@require_http_methods(["GET", "POST"])
def webhooks(request, project: str):
    access = get_access(request, project, Role.ADMIN if request.method == "POST" else Role.VIEWER)
    file_errors = sync_file_webhooks(access.project)
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items()}
        webhook = apply(Webhook(project=access.project, slug=data["id"]), data)
        webhook.name = webhook.name or webhook.slug
        secret = webhook.set_secret()
        try:
            with transaction.atomic():
                webhook.save(force_insert=True)
        except IntegrityError:
            form.add_error("id", "A webhook with this id already exists.")
        else:
            request.session[SECRET_SESSION_KEY.format(pk=webhook.pk)] = secret
            return redirect(
                "dashboard:webhook", project=access.project.slug, webhook_id=webhook.slug
            )
    return render(
        request,
        "webhooks/webhooks.html",
        {
            "access": access,
            "project": access.project,
            "webhooks": Webhook.objects.filter(project=access.project),
            "form": form,
            "file_errors": file_errors if access.can_admin else [],
            "known_targets": _known_targets(),
            "nav": "webhooks",
        },
        status=200,
    )


def test_payload(webhook: Webhook) -> str:
    return json.dumps({} if webhook.payload_to == "input" else {"event": "test"})


def curl_example(webhook: Webhook, url: str) -> str:
    """A shell snippet that signs a test payload with the webhook's scheme; `$SECRET` stands
    for the secret (never written into the page)."""
    body = test_payload(webhook)
    lines = ["SECRET='paste the secret here'", f"BODY={shlex.quote(body)}"]
    if webhook.scheme == Webhook.Scheme.STUDIO:
        lines += [
            "T=$(date +%s)",
            'SIG=$(printf \'%s.%s\' "$T" "$BODY" | openssl dgst -sha256 -hmac "$SECRET" | sed \'s/^.* //\')',
            f"curl -sS -X POST {shlex.quote(url)} -H 'Content-Type: application/json' \\",
            '  -H "X-Studio-Signature: t=$T,v1=$SIG" -H "X-Studio-Delivery: test-$T" -d "$BODY"',
        ]
    elif webhook.scheme == Webhook.Scheme.GITHUB:
        lines += [
            "SIG=$(printf '%s' \"$BODY\" | openssl dgst -sha256 -hmac \"$SECRET\" | sed 's/^.* //')",
            f"curl -sS -X POST {shlex.quote(url)} -H 'Content-Type: application/json' \\",
            '  -H "X-Hub-Signature-256: sha256=$SIG" -H "X-GitHub-Event: ping" '
            '-H "X-GitHub-Delivery: test-$(date +%s)" -d "$BODY"',
        ]
    else:
        lines += [
            f"curl -sS -X POST {shlex.quote(url)} -H 'Content-Type: application/json' \\",
            f'  -H "{webhook.header_name}: $SECRET" -H "X-Studio-Delivery: test-$(date +%s)" -d "$BODY"',
        ]
    return "\n".join(lines)


@login_required
@require_GET
def webhook_detail(request, project: str, webhook_id: str):
    access = get_access(request, project)
    webhook = _webhook(access, webhook_id)
    if request.htmx and "deliveries_after" in request.GET:
        return _deliveries_poll(request, access, webhook)
    secret = None
    if access.can_admin:
        secret = request.session.pop(SECRET_SESSION_KEY.format(pk=webhook.pk), None)
    url = webhook_url(webhook, access.project)
    deliveries = list(webhook.deliveries.select_related("run")[:DELIVERIES_SHOWN])
    return render(
        request,
        "webhooks/detail.html",
        {
            "access": access,
            "project": access.project,
            "webhook": webhook,
            "url": url,
            "curl": curl_example(webhook, url),
            "secret": secret,
            "deliveries": deliveries,
            "newest": _newest(deliveries),
            "nav": "webhooks",
        },
    )


def _newest(deliveries: list[WebhookDelivery]) -> str:
    return deliveries[0].received_at.isoformat() if deliveries else ""


def _deliveries_poll(request, access, webhook: Webhook) -> HttpResponse:
    """The deliveries card again, only when something newer arrived (204 leaves the page as
    it is, so an open "Details" stays open)."""
    newest = webhook.deliveries.order_by("-received_at").values_list("received_at", flat=True)
    latest = newest.first()
    if latest is None or latest.isoformat() == request.GET["deliveries_after"]:
        return HttpResponse(status=204)
    deliveries = list(webhook.deliveries.select_related("run")[:DELIVERIES_SHOWN])
    context = {
        "access": access,
        "project": access.project,
        "webhook": webhook,
        "deliveries": deliveries,
        "newest": _newest(deliveries),
    }
    return render_blocks(request, "webhooks/detail.html", ["deliveries"], context)


@login_required
@require_http_methods(["GET", "POST"])
def webhook_edit(request, project: str, webhook_id: str):
    access = get_access(request, project, Role.ADMIN)
    webhook = _webhook(access, webhook_id)
    if not _editable_or_message(request, webhook):
        return redirect("dashboard:webhook", project=access.project.slug, webhook_id=webhook.slug)
    form = WebhookForm(request.POST or None, instance=webhook)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "id"}
        apply(webhook, data).save()
        messages.success(request, f"Webhook “{webhook.slug}” saved.")
        return redirect("dashboard:webhook", project=access.project.slug, webhook_id=webhook.slug)
    return render(
        request,
        "webhooks/edit.html",
        {
            "access": access,
            "project": access.project,
            "webhook": webhook,
            "form": form,
            "known_targets": _known_targets(),
            "nav": "webhooks",
        },
    )


@login_required
@require_POST
def webhook_rotate(request, project: str, webhook_id: str):
    access = get_access(request, project, Role.ADMIN)
    webhook = _webhook(access, webhook_id)
    if _editable_or_message(request, webhook):
        overlap = timedelta(hours=24) if request.POST.get("overlap") != "none" else timedelta(0)
        secret = webhook.rotate_secret(overlap)
        request.session[SECRET_SESSION_KEY.format(pk=webhook.pk)] = secret
        messages.success(
            request,
            "New secret issued. The old one keeps working for 24 hours."
            if overlap
            else "New secret issued. The old one no longer works.",
        )
    return redirect("dashboard:webhook", project=access.project.slug, webhook_id=webhook.slug)


@login_required
@require_POST
def webhook_delete(request, project: str, webhook_id: str):
    access = get_access(request, project, Role.ADMIN)
    webhook = _webhook(access, webhook_id)
    if not _editable_or_message(request, webhook):
        return redirect("dashboard:webhook", project=access.project.slug, webhook_id=webhook.slug)
    webhook.delete()
    messages.success(request, f"Webhook “{webhook.slug}” deleted. Its URL now answers 404.")
    return redirect("dashboard:webhooks", project=access.project.slug)


@login_required
@require_POST
def webhook_redeliver(request, project: str, webhook_id: str, delivery_id: str):
    """Process a recorded (verified) payload again, as a new delivery that starts a new run."""
    access = get_access(request, project, Role.ADMIN)
    webhook = _webhook(access, webhook_id)
    try:
        original = WebhookDelivery.objects.get(pk=uuid.UUID(delivery_id), webhook=webhook)
    except (WebhookDelivery.DoesNotExist, ValueError):
        raise Http404("no such delivery") from None
    if not original.can_redeliver:
        messages.error(request, "This delivery has no complete recorded body to send again.")
    else:
        headers = {k: v for k, v in original.headers.items() if v != "[redacted]"}
        headers.pop("x-studio-delivery", None)
        headers.pop("x-github-delivery", None)
        answer = inbound.process(
            webhook,
            headers,
            original.body.encode(),
            content_type=original.content_type,
            verification=WebhookDelivery.Verification.SKIPPED,
            redelivery=True,
        )
        if answer.status == 202:
            messages.success(request, "Delivered again: a new run started.")
        elif answer.status == 200:
            messages.info(request, "Delivered again: the event filter left it out.")
        else:
            messages.error(
                request, f"Delivered again: {answer.status} {answer.body['error']['message']}"
            )
    return redirect("dashboard:webhook", project=access.project.slug, webhook_id=webhook.slug)


@login_required
@require_POST
def webhook_test(request, project: str, webhook_id: str):
    """Sign a test payload with the webhook's own secret and deliver it through the real path
    (verification included): what a sender would get, without leaving the dashboard."""
    access = get_access(request, project, Role.ADMIN)
    webhook = _webhook(access, webhook_id)
    secrets_ = webhook.verifying_secrets()
    if not webhook.enabled or not secrets_:
        messages.error(
            request, "This webhook is disabled or has no secret to sign with: nothing was sent."
        )
        return redirect("dashboard:webhook", project=access.project.slug, webhook_id=webhook.slug)
    body = test_payload(webhook).encode()
    headers = {
        "content-type": "application/json",
        "x-studio-delivery": f"dashboard-test-{uuid.uuid4().hex[:16]}",
        "x-studio-event": "test",
    }
    if webhook.scheme == Webhook.Scheme.STUDIO:
        headers["x-studio-signature"] = signing.sign_studio(secrets_[0], body)
    elif webhook.scheme == Webhook.Scheme.GITHUB:
        headers["x-hub-signature-256"] = signing.sign_github(secrets_[0], body)
    else:
        headers[webhook.header_name.lower()] = secrets_[0]
    if not inbound.verify(webhook, headers, body):
        messages.error(request, "The test could not be signed in a way this webhook accepts.")
    else:
        answer = inbound.process(webhook, headers, body, content_type="application/json")
        if answer.status == 202:
            messages.success(request, "Test delivered: a run started.")
        elif answer.status == 200:
            messages.info(request, "Test delivered: the event filter left it out.")
        else:
            messages.error(
                request, f"Test delivered: {answer.status} {answer.body['error']['message']}"
            )
    return redirect("dashboard:webhook", project=access.project.slug, webhook_id=webhook.slug)
