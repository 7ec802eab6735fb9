"""An unexpected error in the web process is logged, with DEBUG off as in production."""

from __future__ import annotations

import io
import logging

import pytest
from django.conf import settings


@pytest.mark.urls("tests.foundation.urls_boom")
def test_a_500_is_logged_with_its_traceback_when_debug_is_off(client, db):
    assert settings.DEBUG is False
    handlers = [
        h for h in logging.getLogger("django.request").handlers if type(h) is logging.StreamHandler
    ]
    assert handlers, "django.request has no console handler of its own"
    stream = io.StringIO()
    previous = [h.setStream(stream) for h in handlers]
    try:
        client.raise_request_exception = False
        response = client.get("/boom/")
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            handler.setStream(old)
    assert response.status_code == 500
    logged = stream.getvalue()
    assert "Internal Server Error: /boom/" in logged
    assert "RuntimeError: the boom view went boom" in logged
