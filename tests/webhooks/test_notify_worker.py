"""End to end with a real worker: a failing run notifies a receiver that is down at first and up
later; the attempt history shows both."""

from __future__ import annotations

import json

import pytest

from runs import signing
from runs.models import NotificationOutbox, NotificationTarget, Run
from runs.service import create_run
from tests.workers import wait_for

from .receiver import Receiver

pytestmark = [pytest.mark.worker]


def test_a_failing_run_reaches_a_receiver_that_comes_up_later(project, start_worker, settings):
    start_worker(
        STUDIO_NOTIFY_ALLOW_PRIVATE_URLS="true",
        STUDIO_NOTIFY_RETRY_SCALE="0.02",  # retries after 0.2 s, 0.6 s, 1.2 s, ...
        STUDIO_NOTIFY_POLL_SECONDS="0.1",
        STUDIO_BASE_URL="http://studio.test",
    )
    receiver = Receiver()  # its port is free: nothing listens yet
    target = NotificationTarget(project=project, url=receiver.url, outcomes=["failed"])
    secret = target.set_secret()
    target.save()

    run = create_run(project, target="task:failing-task", created_by="tests").run
    wait_for(
        lambda: Run.objects.filter(pk=run.pk, status="failed").exists(), 30, message="run fails"
    )
    row = wait_for(lambda: NotificationOutbox.objects.filter(run=run).first(), message="outbox")
    wait_for(lambda: row.tries.filter(ok=False).count() >= 2, 30, message="failed attempts")

    receiver.start()
    try:
        wait_for(
            lambda: NotificationOutbox.objects.filter(pk=row.pk, state="delivered").exists(),
            30,
            message="delivery",
        )
    finally:
        receiver.stop()
    tries = list(row.tries.all())
    assert [t.ok for t in tries][-1] is True and not any(t.ok for t in tries[:-1])
    assert all("ConnectError" in t.error for t in tries[:-1])
    headers, body = receiver.requests[0]
    assert signing.verify_studio([secret], headers["x-studio-signature"], body)
    payload = json.loads(body)
    assert payload["run"]["run_id"] == run.pk and payload["run"]["status"] == "failed"
    assert payload["dashboard_url"] == f"http://studio.test/p/acme/runs/{run.pk}/"
