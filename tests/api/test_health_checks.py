"""The API pings the database (Django's CONN_HEALTH_CHECKS) at most once a second per connection
instead of before every request (runs.db.fewer_health_checks), and so does a worker."""

from __future__ import annotations

import pytest
from django.db import connection

from runs import db

pytestmark = pytest.mark.django_db


def _new_request() -> None:
    # What Django does when a request starts: the connection is due for a check again.
    connection.health_check_done = False


def test_a_connection_checked_a_moment_ago_is_not_pinged_again(settings):
    connection.ensure_connection()
    connection.health_check_enabled = True  # as with PostgreSQL's settings
    connection.__dict__.pop("studio_health_checked_at", None)
    try:
        _new_request()
        db.fewer_health_checks()
        assert connection.health_check_done is False  # the first request pings
        _new_request()
        db.fewer_health_checks()
        assert connection.health_check_done is True  # the next one, within a second, does not
        connection.studio_health_checked_at -= db.HEALTH_CHECK_EVERY_SECONDS
        _new_request()
        db.fewer_health_checks()
        assert connection.health_check_done is False  # a second later it pings again
    finally:
        connection.health_check_enabled = connection.settings_dict["CONN_HEALTH_CHECKS"]
        connection.health_check_done = False


def test_without_health_checks_it_changes_nothing():
    connection.ensure_connection()
    enabled = connection.health_check_enabled
    connection.health_check_enabled = False
    try:
        _new_request()
        db.fewer_health_checks()
        assert connection.health_check_done is False
    finally:
        connection.health_check_enabled = enabled


def test_a_connection_made_a_moment_ago_is_not_pinged():
    connection.close()
    enabled = connection.health_check_enabled
    try:
        db.fewer_health_checks()  # about to connect: connecting is the check
        connection.ensure_connection()
        connection.health_check_enabled = True
        _new_request()
        db.fewer_health_checks()
        assert connection.health_check_done is True
    finally:
        connection.health_check_enabled = enabled
        connection.health_check_done = False
