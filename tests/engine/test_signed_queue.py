"""Queue messages are authenticated: a forged or corrupt one is dropped before it is unpickled,
and every real run still gets done."""

from __future__ import annotations

import pickle

import pytest
from django.conf import settings
from huey.contrib.djhuey import HUEY

from studio.queue_signing import QueueSerializer
from tests.workers import wait_for

from .conftest import wait_status

DROPPED = "failed its signature check"


class Touch:
    """Unpickling this creates a file: the stand-in for code a forged message runs."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def forged_pickle(path) -> bytes:
    return pickle.dumps(Touch(str(path)))


def test_the_payload_is_live_when_unpickled_unchecked(tmp_path):
    """The attack the tests below use works against a plain pickle: the control experiment."""
    marker = tmp_path / "control"
    pickle.loads(forged_pickle(marker)).close()
    assert marker.exists()


def test_the_configured_queue_signs_and_checks_before_unpickling(tmp_path, caplog):
    serializer = HUEY.serializer
    assert isinstance(serializer, QueueSerializer)
    assert serializer.deserialize(serializer.serialize({"run": 1})) == {"run": 1}

    marker = tmp_path / "pwned"
    payload = forged_pickle(marker)
    signed_elsewhere = QueueSerializer("another secret key").serialize(Touch(str(marker)))
    for message in (payload, payload + b":" + b"0" * 40, signed_elsewhere, b""):
        with pytest.raises(ValueError):
            serializer.deserialize(message)
    assert not marker.exists()
    assert caplog.text.count(DROPPED) == 4


def test_the_queue_key_is_derived_from_secret_key_not_secret_key_itself():
    assert settings.SECRET_KEY.encode() not in HUEY.serializer._key
    assert settings.SECRET_KEY.encode() != HUEY.serializer.secret


@pytest.mark.worker
def test_a_forged_message_on_the_real_queue_is_dropped_and_real_runs_still_complete(
    start_test_worker, create, tmp_path
):
    worker = start_test_worker()
    marker = tmp_path / "pwned"
    payload = forged_pickle(marker)
    # What a run (or anyone reaching Redis or the queue file) could push: a bare pickle, one
    # with a made-up signature, and noise.
    for message in (payload, payload + b":" + b"f" * 40, b"\x80\x04garbage"):
        HUEY.storage.enqueue(message)
    run = create("echo", input={"lines": ["after the forgery"]})
    wait_status(run, "completed")  # its message was behind the forged ones
    assert not marker.exists()
    wait_for(lambda: worker.log.count(DROPPED) == 3, message="three dropped messages logged")
    assert worker.proc.poll() is None  # the worker is still serving


@pytest.mark.worker
def test_a_run_whose_message_was_corrupted_is_found_by_the_sweeper(start_test_worker, create):
    run = create("echo", input={"lines": ["x"]})
    message = HUEY.storage.dequeue()  # the run's real message, signed
    assert message is not None and HUEY.pending_count() == 0
    corrupt = bytearray(message)
    corrupt[len(corrupt) // 3] ^= 0x01  # one flipped bit in the pickle
    HUEY.storage.enqueue(bytes(corrupt))

    worker = start_test_worker(STUDIO_REQUEUE_AFTER_SECONDS=0.5, STUDIO_SWEEP_SECONDS=0.3)
    wait_status(run, "completed")
    assert DROPPED in worker.log
    assert "re-enqueued 1 run(s)" in worker.log
