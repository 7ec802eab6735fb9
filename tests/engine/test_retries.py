"""backoff_limit: failed attempts come back as `waiting`, then run again."""

from __future__ import annotations

import pytest

from .conftest import event_types, wait_status

pytestmark = pytest.mark.worker


def test_a_failed_attempt_waits_then_retries_until_it_succeeds(start_test_worker, create):
    start_test_worker(STUDIO_RETRY_BASE_SECONDS=0.2)
    run = create("flaky", input={"succeed_on": 3}, backoff_limit=3)

    wait_status(run, "waiting")
    assert run.waiting_reason == "retry"
    assert run.resume_at is not None
    assert run.metadata["retry"]["failed_attempt"] == 1
    assert run.error["message"] == "attempt 1 failed"

    wait_status(run, "completed")
    assert run.attempt == 3
    assert run.output == {"attempt": 3}
    assert run.error is None
    types = event_types(run)
    assert types.count("run.started") == 3
    assert types.count("run.retrying") == 2
    retrying = [e.payload for e in run.events.filter(event_type="run.retrying").order_by("id")]
    assert [r["attempt"] for r in retrying] == [2, 3]
    assert all(r["delay_seconds"] > 0 for r in retrying)


def test_a_run_out_of_attempts_fails(start_test_worker, create):
    start_test_worker(STUDIO_RETRY_BASE_SECONDS=0.1)
    run = create("flaky", backoff_limit=1)
    wait_status(run, "failed", timeout=30)
    assert run.attempt == 2
    assert event_types(run).count("run.retrying") == 1
    assert run.error["message"] == "attempt 2 failed"


def test_timeouts_are_retried(start_test_worker, create):
    start_test_worker(STUDIO_RETRY_BASE_SECONDS=0.1)
    run = create("sleeper", input={"seconds": 30}, timeout_seconds=1, backoff_limit=1)
    wait_status(run, "failed", timeout=30)
    assert run.attempt == 2
    assert run.error["code"] == "timeout"
    assert event_types(run).count("run.retrying") == 1
