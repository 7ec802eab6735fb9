"""Production settings from the environment: HTTPS behind a proxy, session age, the CSP, and
no-store on what shows a token secret."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from django.test import Client

from runs.models import ApiToken
from tests.dashboard.conftest import make_user
from tests.foundation.helpers import ROOT, subprocess_env

# A GET of the login page through the whole middleware stack, in a fresh process with the
# environment under test; it needs no database.
PROBE = """
import django, json
django.setup()
from django.conf import settings as s
from django.test import Client
r = Client().get("/accounts/login/", HTTP_HOST="localhost", HTTP_X_FORWARDED_PROTO="https")
cookie = r.cookies["csrftoken"]
print(json.dumps({
    "status": r.status_code,
    "hsts": r.get("Strict-Transport-Security"),
    "csp": r.get("Content-Security-Policy"),
    "csrf_cookie_secure": bool(cookie["secure"]),
    "csrf_cookie_httponly": bool(cookie["httponly"]),
    "session_cookie_secure": s.SESSION_COOKIE_SECURE,
    "proxy_header": s.SECURE_PROXY_SSL_HEADER,
    "session_age": s.SESSION_COOKIE_AGE,
}))
"""


def probe(tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=subprocess_env(tmp_path, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_studio_https_turns_on_secure_cookies_hsts_and_the_proxy_header(tmp_path):
    result = probe(tmp_path, STUDIO_HTTPS="true")
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["status"] == 200
    assert seen["hsts"] == "max-age=31536000"
    assert seen["csrf_cookie_secure"] and seen["session_cookie_secure"]
    assert seen["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_without_studio_https_nothing_claims_https(tmp_path):
    result = probe(tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["hsts"] is None  # a forged X-Forwarded-Proto is not believed
    assert not seen["csrf_cookie_secure"] and not seen["session_cookie_secure"]
    assert seen["proxy_header"] is None
    assert seen["csrf_cookie_httponly"]


def test_sessions_last_twelve_hours_unless_configured(tmp_path):
    assert json.loads(probe(tmp_path).stdout)["session_age"] == 12 * 3600
    assert json.loads(probe(tmp_path, STUDIO_SESSION_HOURS="1.5").stdout)["session_age"] == 5400


@pytest.mark.parametrize(
    "name, value", [("STUDIO_HTTPS", "yes"), ("STUDIO_SESSION_HOURS", "forever")]
)
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path, name, value):
    result = probe(tmp_path, **{name: value})
    assert result.returncode != 0
    assert name in result.stderr


def test_the_csp_can_be_replaced_from_the_environment(tmp_path):
    seen = json.loads(probe(tmp_path, STUDIO_CSP="default-src 'none'").stdout)
    assert seen["csp"] == "default-src 'none'"


def test_every_page_gets_a_csp_without_unsafe_inline(client, db):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy


@pytest.mark.django_db
def test_the_dashboard_token_secret_is_never_cached_nor_put_in_a_cookie(project):
    owner = make_user("olivia", project, "admin")
    client = Client()
    client.force_login(owner)
    posted = client.post("/p/acme/tokens/", {"name": "ci"})
    assert posted.status_code == 302  # post/redirect/get: a reload never creates a second one
    assert not posted.cookies or all("stu_" not in c.value for c in posted.cookies.values())
    response = client.get("/p/acme/tokens/")
    secret = re.search(r'value="(stu_[^"]+)"', response.content.decode()).group(1)
    assert ApiToken.objects.authenticate(secret) is not None
    assert "no-store" in response["Cache-Control"]
    assert not [c for c in response.cookies.values() if secret in c.value]
    # Kept server-side for exactly one read: gone from the session once shown.
    assert secret not in str(dict(client.session))
    assert secret not in client.get("/p/acme/tokens/").content.decode()
    # Never cached: the page may carry a secret.
    assert "no-store" in client.get("/p/acme/tokens/")["Cache-Control"]
