"""Sign-in throttling (django-axes): repeated wrong passwords lock the username out from that
address, for the dashboard and the admin alike, and admins can see and lift the lock."""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.utils import timezone

from .conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
LOCKED = "Too many sign-in attempts"


def sign_in(client: Client, username: str, password: str, url: str = LOGIN, **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def fail_until_locked(client: Client, username: str, url: str = LOGIN, **extra):
    for _ in range(settings.STUDIO_LOGIN_FAILURE_LIMIT - 1):
        response = sign_in(client, username, "wrong password", url, **extra)
        assert response.status_code == 200  # the form again, with its error
    return sign_in(client, username, "wrong password", url, **extra)


def test_the_limit_defaults_to_five_failures_and_fifteen_minutes():
    assert settings.STUDIO_LOGIN_FAILURE_LIMIT == 5
    assert settings.STUDIO_LOGIN_COOLOFF_MINUTES == 15


def test_repeated_failures_lock_the_dashboard_sign_in_even_for_the_right_password(viewer):
    client = Client()
    response = fail_until_locked(client, viewer.username)
    assert response.status_code == 429
    html = response.content.decode()
    assert LOCKED in html
    assert "locked after 5 wrong passwords" in html and "Try again in 15 minutes" in html

    response = sign_in(client, viewer.username, PASSWORD)
    assert response.status_code == 429
    assert client.get("/p/acme/runs/").status_code == 302  # still signed out


def test_the_admin_sign_in_is_throttled_too(db):
    make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    response = fail_until_locked(client, "root", ADMIN_LOGIN)
    assert response.status_code == 429
    assert sign_in(client, "root", PASSWORD, ADMIN_LOGIN).status_code == 429
    assert client.get("/admin/").status_code == 302


def test_a_success_before_the_limit_starts_the_count_again(viewer):
    client = Client()
    for _ in range(settings.STUDIO_LOGIN_FAILURE_LIMIT - 1):
        sign_in(client, viewer.username, "wrong password")
    assert sign_in(client, viewer.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.STUDIO_LOGIN_FAILURE_LIMIT - 1):
        assert sign_in(client, viewer.username, "wrong password").status_code == 200
    assert sign_in(client, viewer.username, PASSWORD).status_code == 302


def test_the_lock_holds_for_that_username_from_that_address_only(viewer, operator):
    fail_until_locked(Client(), viewer.username, REMOTE_ADDR="203.0.113.9")
    assert (
        sign_in(Client(), viewer.username, PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 429
    )
    # Someone guessing from elsewhere cannot lock the real user out of their own desk...
    assert (
        sign_in(Client(), viewer.username, PASSWORD, REMOTE_ADDR="198.51.100.7").status_code == 302
    )
    # ...nor other users out from that address.
    assert (
        sign_in(Client(), operator.username, PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 302
    )


def test_the_lock_ends_after_the_cool_off(viewer):
    fail_until_locked(Client(), viewer.username)
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=16))
    assert sign_in(Client(), viewer.username, PASSWORD).status_code == 302


def test_admins_see_the_lockout_in_the_admin_and_can_lift_it(viewer):
    fail_until_locked(Client(), viewer.username)
    admin = Client()
    admin.force_login(make_user("root", is_staff=True, is_superuser=True))
    html = admin.get("/admin/axes/accessattempt/").content.decode()
    assert viewer.username in html
    assert "127.0.0.1" in html
    attempt = AccessAttempt.objects.get(username=viewer.username)
    assert attempt.failures_since_start == settings.STUDIO_LOGIN_FAILURE_LIMIT
    assert (
        viewer.username
        in admin.get(f"/admin/axes/accessattempt/{attempt.pk}/change/").content.decode()
    )

    response = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert sign_in(Client(), viewer.username, PASSWORD).status_code == 302


@pytest.mark.parametrize("url", [LOGIN, ADMIN_LOGIN])
def test_an_overlong_or_odd_username_is_a_failed_sign_in_not_a_500(url, db):
    """Each failure is recorded against the name; PostgreSQL refused one past 255 characters."""
    client = Client()
    for username in ("x" * 5000, "a\x00b", ""):
        response = sign_in(client, username, "y" * 10_000, url)
        assert response.status_code == 200
    assert AccessAttempt.objects.filter(username="x" * 255).exists()
