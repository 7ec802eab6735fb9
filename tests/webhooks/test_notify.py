"""Run notifications: outcomes, target filters, the outbox written with the run's ending,
delivery with signature, retries, ordering, giving up, flagging, private URLs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from runs import lifecycle, notify, signing
from runs.models import NotificationOutbox, NotificationTarget, Run
from runs.service import create_run

from .receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _allow_private(settings):
    settings.STUDIO_NOTIFY_ALLOW_PRIVATE_URLS = True
    settings.STUDIO_BASE_URL = "https://studio.example.com"


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def make_target(project, url="http://127.0.0.1:9/notify", **fields) -> NotificationTarget:
    fields.setdefault("outcomes", ["failed", "completed", "recovered", "timed_out", "cancelled"])
    target = NotificationTarget(project=project, url=url, **fields)
    secret = target.set_secret()
    target.save()
    target.plain_secret = secret
    return target


def new_run(project, target="task:sync-data", **kw) -> Run:
    return create_run(project, target=target, created_by="tests", **kw).run


def finish(run: Run, status: str, code: str = "task_error") -> Run:
    if status == "failed":
        assert lifecycle.fail(run, lifecycle.error("boom", code))
    elif status == "cancelled":
        lifecycle.cancel(run, "stop")
    else:
        claimed = lifecycle.claim(run.pk, worker="w1")
        assert lifecycle.complete(claimed, {"ok": True}, worker="w1")
        run = claimed
    run.refresh_from_db()
    return run


def test_a_failed_run_writes_an_outbox_row_in_its_transaction(project):
    target = make_target(project)
    run = finish(new_run(project), "failed")
    row = NotificationOutbox.objects.get()
    assert row.target == target and row.run_id == run.pk and row.event == "run.failed"
    assert row.outcomes == ["failed"]
    assert row.payload["run"]["status"] == "failed"
    assert row.payload["project"]["slug"] == "acme"
    assert row.payload["dashboard_url"] == f"https://studio.example.com/p/acme/runs/{run.pk}/"


def test_a_timeout_counts_as_timed_out_and_failed(project):
    only_timeouts = make_target(project, outcomes=["timed_out"])
    only_failures = make_target(project, outcomes=["failed"])
    finish(new_run(project), "failed", code="timeout")
    assert set(NotificationOutbox.objects.values_list("target", flat=True)) == {
        only_timeouts.pk,
        only_failures.pk,
    }
    assert NotificationOutbox.objects.first().outcomes == ["failed", "timed_out"]


def test_recovered_is_the_first_success_after_a_failure(project):
    make_target(project, outcomes=["recovered"])
    finish(new_run(project), "completed")
    assert not NotificationOutbox.objects.exists()  # no failure before it
    finish(new_run(project), "failed")
    assert not NotificationOutbox.objects.exists()
    finish(new_run(project), "completed")
    assert NotificationOutbox.objects.get().outcomes == ["completed", "recovered"]
    finish(new_run(project), "completed")
    assert NotificationOutbox.objects.count() == 1  # the second success recovers nothing


def test_targets_and_children_filters(project):
    make_target(project, targets=["task:long-running"])
    children = make_target(project, include_children=True, outcomes=["failed"])
    finish(new_run(project), "failed")  # task:sync-data: only the catch-all target
    assert list(NotificationOutbox.objects.values_list("target", flat=True)) == [children.pk]
    parent = new_run(project, target="task:long-running")
    child = new_run(project, parent_run=parent)
    finish(child, "failed")
    assert NotificationOutbox.objects.filter(run=child).count() == 1  # include_children only
    finish(parent, "cancelled")
    assert NotificationOutbox.objects.filter(run=parent, outcomes=["cancelled"]).count() == 1


def test_disabled_targets_and_unwanted_outcomes_get_nothing(project):
    make_target(project, enabled=False)
    make_target(project, outcomes=["completed"])
    finish(new_run(project), "failed")
    assert not NotificationOutbox.objects.exists()


def test_delivery_is_signed_with_the_studio_scheme(project, receiver):
    target = make_target(project, url=receiver.url)
    run = finish(new_run(project), "failed")
    assert notify.deliver_due() == 1
    ((headers, body),) = receiver.requests
    assert signing.verify_studio([target.plain_secret], headers["x-studio-signature"], body)
    payload = json.loads(body)
    assert payload["run"]["run_id"] == run.pk and payload["event"] == "run.failed"
    assert headers["x-studio-event"] == "run.failed"
    row = NotificationOutbox.objects.get()
    assert row.state == "delivered" and headers["x-studio-delivery"] == str(row.delivery_id)
    assert [(a.ok, a.status_code) for a in row.tries.all()] == [(True, 200)]


def test_slack_gets_a_readable_message_with_a_link(project, receiver):
    make_target(project, url=receiver.url, kind="slack")
    run = finish(new_run(project), "failed")
    notify.deliver_due()
    ((headers, body),) = receiver.requests
    text = json.loads(body)["text"]
    assert "task:sync-data" in text and "failed" in text and "boom" in text
    assert f"<https://studio.example.com/p/acme/runs/{run.pk}/|{run.pk}>" in text
    assert "x-studio-signature" not in headers


def test_failures_retry_with_backoff_in_order_then_deliver(project):
    down = Receiver()  # not started: connection refused
    target = make_target(project, url=down.url)
    first = finish(new_run(project), "failed")
    second = finish(new_run(project), "failed")
    assert notify.deliver_due() == 1  # the first fails; the second must not overtake it
    rows = {r.run_id: r for r in NotificationOutbox.objects.all()}
    assert rows[first.pk].attempts == 1 and rows[second.pk].attempts == 0
    delay = rows[first.pk].next_attempt_at - timezone.now()
    assert timedelta(seconds=0) < delay <= timedelta(seconds=60)  # first retry within a minute
    assert notify.deliver_due() == 0  # not due yet
    target.refresh_from_db()
    assert target.consecutive_failures == 1 and target.failing_since is not None

    down.start()
    try:
        NotificationOutbox.objects.update(next_attempt_at=timezone.now())
        assert notify.deliver_due() == 2
        assert [json.loads(b)["run"]["run_id"] for _, b in down.requests] == [first.pk, second.pk]
    finally:
        down.stop()
    first_row = NotificationOutbox.objects.get(run=first)
    assert [a.ok for a in first_row.tries.all()] == [False, True]
    assert "ConnectError" in first_row.tries.first().error
    target.refresh_from_db()
    assert target.consecutive_failures == 0 and not target.is_failing


def test_a_target_that_keeps_failing_is_flagged_and_given_up_after_a_day(project, receiver):
    receiver.status = 500
    target = make_target(project, url=receiver.url)
    finish(new_run(project), "failed")
    for _ in range(NotificationTarget.FAILING_AFTER):
        NotificationOutbox.objects.update(next_attempt_at=timezone.now())
        notify.deliver_due()
    target.refresh_from_db()
    assert target.is_failing
    row = NotificationOutbox.objects.get()
    assert row.state == "pending" and "HTTP 500" in row.last_error
    NotificationOutbox.objects.update(
        next_attempt_at=timezone.now(), created_at=timezone.now() - timedelta(hours=25)
    )
    notify.deliver_due()
    row.refresh_from_db()
    assert row.state == "gave_up"


def test_backoff_reaches_an_hour_and_stays(settings):
    settings.STUDIO_NOTIFY_RETRY_SCALE = 1.0
    assert notify.retry_delay(1) == 10
    assert notify.retry_delay(9) == notify.retry_delay(30) == 3600


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8000/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
    ],
)
def test_private_urls_are_refused_unless_allowed(settings, url):
    settings.STUDIO_NOTIFY_ALLOW_PRIVATE_URLS = False
    assert "internal address" in notify.url_problem(url)
    settings.STUDIO_NOTIFY_ALLOW_PRIVATE_URLS = True
    assert notify.url_problem(url) is None


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://user:pw@example.com/", "nope"])
def test_only_plain_http_urls(url):
    assert notify.url_problem(url)


def test_a_refused_url_is_recorded_as_a_failed_attempt(project, settings):
    make_target(project, url="http://127.0.0.1:9/x")
    finish(new_run(project), "failed")
    settings.STUDIO_NOTIFY_ALLOW_PRIVATE_URLS = False
    notify.deliver_due()
    attempt = NotificationOutbox.objects.get().tries.get()
    assert not attempt.ok and "URL refused" in attempt.error


def test_a_failing_hook_never_undoes_the_transition(project, monkeypatch):
    make_target(project)

    def broken(*a, **k):
        raise RuntimeError("outbox down")

    monkeypatch.setattr("runs.notify.NotificationOutbox.objects.bulk_create", broken)
    run = finish(new_run(project), "failed")
    assert run.status == "failed"
    assert not NotificationOutbox.objects.exists()


def test_a_disabled_targets_notifications_wait(project, receiver):
    target = make_target(project, url=receiver.url)
    finish(new_run(project), "failed")
    NotificationTarget.objects.filter(pk=target.pk).update(enabled=False)
    assert notify.deliver_due() == 0 and receiver.requests == []
    NotificationTarget.objects.filter(pk=target.pk).update(enabled=True)
    assert notify.deliver_due() == 1 and len(receiver.requests) == 1


def test_the_schedule_retries_within_a_minute_past_an_hour_and_stops_at_a_day(settings):
    settings.STUDIO_NOTIFY_RETRY_SCALE = 1.0
    elapsed, times = 0.0, []
    while elapsed < 24 * 3600:
        elapsed += notify.retry_delay(len(times) + 1)
        times.append(elapsed)
    assert times[0] <= 60
    assert any(3600 < t <= 2 * 3600 for t in times)  # down for an hour: still delivered
    assert len(times) < 40  # hourly once the receiver has been down a while


def test_two_workers_never_send_one_row_twice(project):
    make_target(project)
    finish(new_run(project), "failed")
    row = NotificationOutbox.objects.get()
    now = timezone.now()
    assert notify._claim(row, now) is True
    assert notify._claim(row, now) is False  # the other worker saw the same due row: lost race
