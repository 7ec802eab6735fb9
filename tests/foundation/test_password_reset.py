"""Password reset mails a link, so its pages exist only once a mail server is configured."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

pytestmark = pytest.mark.django_db

RESET_PAGES = [
    "/accounts/password_reset/",
    "/accounts/password_reset/done/",
    "/accounts/reset/MQ/set-password/",
    "/accounts/reset/done/",
]


@pytest.mark.parametrize("url", RESET_PAGES)
def test_without_email_the_reset_pages_are_404(client, settings, url):
    settings.EMAIL_HOST = ""
    assert client.get(url).status_code == 404
    assert client.post(url, {"email": "someone@example.com"}).status_code == 404
    assert mail.outbox == []


def test_email_is_off_unless_configured(settings):
    assert settings.EMAIL_HOST == ""


def test_with_email_configured_a_reset_mails_a_link(client, settings):
    settings.EMAIL_HOST = "smtp.example.com"
    get_user_model().objects.create_user("vera", email="vera@example.com", password="pw-12345678")
    assert client.get("/accounts/password_reset/").status_code == 200
    response = client.post("/accounts/password_reset/", {"email": "vera@example.com"})
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 200
    assert len(mail.outbox) == 1 and "/accounts/reset/" in mail.outbox[0].body


def test_sign_in_and_out_and_password_change_still_work(client):
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/accounts/password_change/").status_code == 302  # to sign in first
