"""Fixtures for webhooks and notifications: webhooks of each scheme and a signed sender."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from runs import signing
from runs.models import Webhook

SECRET = "whsec_test-secret-0123456789"


@pytest.fixture(autouse=True)
def enqueued(request, monkeypatch) -> list[str]:
    """Runs handed to the queue; without a real worker the queue is kept out of it."""
    calls: list[str] = []
    if not {"worker", "start_worker", "live_worker"} & set(request.fixturenames):
        monkeypatch.setattr("runs.lifecycle.enqueue", lambda run_id, **kw: calls.append(run_id))
    return calls


@pytest.fixture(autouse=True)
def _no_webhook_files(settings, tmp_path):
    settings.STUDIO_WEBHOOKS_DIR = tmp_path / "no-webhooks"


def make_webhook(project, slug="deploy", *, secret=SECRET, **fields) -> Webhook:
    fields.setdefault("target", "task:sync-data")
    webhook = Webhook(project=project, slug=slug, name=slug.title(), **fields)
    webhook.set_secret(secret)
    webhook.save()
    return webhook


@pytest.fixture
def webhook(project) -> Webhook:
    return make_webhook(project)


class Sender:
    """Posts to /hooks/<project>/<id> the way a sender would, signed or not."""

    def __init__(self, client: Client):
        self.client = client

    def post(
        self,
        path: str,
        body: bytes | str | dict | None = None,
        *,
        content_type: str = "application/json",
        headers: dict | None = None,
    ):
        if isinstance(body, dict):
            body = json.dumps(body)
        raw = body.encode() if isinstance(body, str) else (body or b"")
        return self.client.post(path, raw, content_type=content_type, headers=headers or {})

    def studio(
        self,
        path: str,
        body: dict | bytes | str,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict | None = None,
        content_type: str = "application/json",
    ):
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        raw = raw.encode() if isinstance(raw, str) else raw
        t = int(time.time()) if timestamp is None else timestamp
        signed = {signing.SIGNATURE_HEADER: signing.sign_studio(secret, raw, t), **(headers or {})}
        return self.post(path, raw, content_type=content_type, headers=signed)


@pytest.fixture
def sender(client) -> Sender:
    return Sender(client)
