"""Dashboard pages for webhooks and notifications: what each persona sees and may do, the secret
shown once (a reload never shows it again), deliveries, re-delivery, test send."""

from __future__ import annotations

import time

import pytest

from runs import signing
from runs.models import (
    Membership,
    NotificationAttempt,
    NotificationTarget,
    Run,
    Webhook,
    WebhookDelivery,
)
from tests.dashboard.conftest import make_user

from .conftest import SECRET, make_webhook
from .receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.STUDIO_NOTIFY_ALLOW_PRIVATE_URLS = True
    settings.STUDIO_BASE_URL = "https://studio.example.com"


@pytest.fixture
def people(project, other_project):
    return {
        "admin": make_user("olivia", project, Membership.Role.ADMIN),
        "operator": make_user("oscar", project, Membership.Role.OPERATOR),
        "viewer": make_user("vera", project, Membership.Role.VIEWER),
        "outsider": make_user("otto", other_project, Membership.Role.ADMIN),
    }


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def new_webhook_form(**overrides):
    data = {
        "id": "deploy",
        "name": "Deploy",
        "target": "task:sync-data",
        "payload_to": "config",
        "scheme": "studio",
        "enabled": "on",
        "event_filter": "",
    }
    return {**data, **overrides}


def test_an_admin_creates_a_webhook_and_sees_the_secret_once(as_user, people):
    client = as_user(people["admin"])
    response = client.post("/p/acme/webhooks/", new_webhook_form())
    assert response.status_code == 302
    assert response["Location"] == "/p/acme/webhooks/deploy/"
    page = client.get("/p/acme/webhooks/deploy/").content.decode()
    webhook = Webhook.objects.get()
    secret = webhook.verifying_secrets()[0]
    assert secret in page
    assert "https://studio.example.com/hooks/acme/deploy" in page
    assert "$SECRET" in page and "X-Studio-Signature: t=$T,v1=$SIG" in page
    reload = client.get("/p/acme/webhooks/deploy/").content.decode()
    assert secret not in reload


def test_bad_input_names_the_field_and_keeps_what_was_typed(as_user, people):
    client = as_user(people["admin"])
    response = client.post(
        "/p/acme/webhooks/",
        new_webhook_form(target="task:onboard-customer", event_filter='{"mode": "sometimes"}'),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "must be all or any" in html
    assert "sometimes" in html  # the typed filter is kept
    assert not Webhook.objects.exists()
    response = client.post("/p/acme/webhooks/", new_webhook_form(event_filter="{oops"))
    assert "is not valid JSON" in response.content.decode()
    response = client.post("/p/acme/webhooks/", new_webhook_form(target="task:onboard-customer"))
    assert "send it as input" in response.content.decode()


def test_the_deliveries_show_on_the_page_and_can_be_sent_again(as_user, people, project):
    webhook = make_webhook(project)
    raw = b'{"batchSize": 3}'
    client = as_user(people["admin"])
    client.post(
        "/hooks/acme/deploy",
        raw,
        content_type="application/json",
        headers={"X-Studio-Signature": signing.sign_studio(SECRET, raw, int(time.time()))},
    )
    run = Run.objects.get()
    page = client.get("/p/acme/webhooks/deploy/").content.decode()
    assert f"/p/acme/runs/{run.pk}/" in page and "Verified" in page
    delivery = WebhookDelivery.objects.get()
    response = client.post(f"/p/acme/webhooks/deploy/deliveries/{delivery.pk}/redeliver/")
    assert response.status_code == 302
    assert Run.objects.count() == 2
    newest = WebhookDelivery.objects.order_by("-received_at").first()
    assert newest.verification == "skipped" and newest.run_id != run.pk
    assert webhook.deliveries.count() == 2


def test_rotate_shows_the_new_secret_once(as_user, people, project):
    webhook = make_webhook(project)
    client = as_user(people["admin"])
    response = client.post("/p/acme/webhooks/deploy/rotate/", follow=True)
    webhook.refresh_from_db()
    new = webhook.verifying_secrets()[0]
    assert new != SECRET and new in response.content.decode()
    assert SECRET in webhook.verifying_secrets()  # overlap
    assert new not in client.get("/p/acme/webhooks/deploy/").content.decode()


def test_edit_and_delete(as_user, people, project):
    make_webhook(project)
    client = as_user(people["admin"])
    response = client.post(
        "/p/acme/webhooks/deploy/edit/",
        new_webhook_form(scheme="header", header_name="X-Token", enabled=""),
    )
    assert response.status_code == 302
    webhook = Webhook.objects.get()
    assert webhook.scheme == "header" and not webhook.enabled and webhook.slug == "deploy"
    assert client.post("/p/acme/webhooks/deploy/delete/").status_code == 302
    assert not Webhook.objects.exists()


def test_notifications_create_test_send_and_attempts(as_user, people, project):
    receiver = Receiver().start()
    try:
        client = as_user(people["admin"])
        response = client.post(
            "/p/acme/notifications/",
            {
                "kind": "json",
                "url": receiver.url,
                "outcomes": ["failed", "timed_out"],
                "enabled": "on",
            },
        )
        assert response.status_code == 302
        target = NotificationTarget.objects.get()
        page = client.get(response["Location"]).content.decode()
        assert target.secret in page
        assert target.secret not in client.get(response["Location"]).content.decode()
        sent = client.post(f"/p/acme/notifications/{target.pk}/test/", follow=True)
        assert "Test notification delivered" in sent.content.decode()
        headers, body = receiver.requests[0]
        assert signing.verify_studio([target.secret], headers["x-studio-signature"], body)
        assert NotificationAttempt.objects.get().ok
        assert (
            "Delivered (200)" in client.get(f"/p/acme/notifications/{target.pk}/").content.decode()
        )
    finally:
        receiver.stop()


def test_a_failing_target_is_flagged(as_user, people, project):
    target = NotificationTarget.objects.create(
        project=project, url="http://127.0.0.1:9/x", consecutive_failures=5
    )
    client = as_user(people["viewer"])
    assert "Failing" in client.get("/p/acme/notifications/").content.decode()
    assert "keeps failing" in client.get(f"/p/acme/notifications/{target.pk}/").content.decode()


def test_notification_url_problems_are_shown(as_user, people, settings):
    settings.STUDIO_NOTIFY_ALLOW_PRIVATE_URLS = False
    client = as_user(people["admin"])
    response = client.post(
        "/p/acme/notifications/",
        {"kind": "json", "url": "http://127.0.0.1:8000/x", "outcomes": ["failed"]},
    )
    assert response.status_code == 200
    assert "internal address" in response.content.decode()
    assert 'value="http://127.0.0.1:8000/x"' in response.content.decode()
    assert not NotificationTarget.objects.exists()


# --- persona x URL ----------------------------------------------------------------------------


@pytest.fixture
def urls(project):
    webhook = make_webhook(project)
    delivery = WebhookDelivery.objects.create(
        webhook=webhook, project=project, verification="verified", status_code=200, body="{}"
    )
    target = NotificationTarget.objects.create(project=project, url="http://127.0.0.1:9/x")
    return {
        "webhooks": "/p/acme/webhooks/",
        "webhook": "/p/acme/webhooks/deploy/",
        "webhook_edit": "/p/acme/webhooks/deploy/edit/",
        "notifications": "/p/acme/notifications/",
        "notification": f"/p/acme/notifications/{target.pk}/",
        "notification_edit": f"/p/acme/notifications/{target.pk}/edit/",
        "_rotate": "/p/acme/webhooks/deploy/rotate/",
        "_delete": "/p/acme/webhooks/deploy/delete/",
        "_redeliver": f"/p/acme/webhooks/deploy/deliveries/{delivery.pk}/redeliver/",
        "_test": f"/p/acme/notifications/{target.pk}/test/",
        "_ndelete": f"/p/acme/notifications/{target.pk}/delete/",
        "_wtest": "/p/acme/webhooks/deploy/test/",
    }


READABLE = ["webhooks", "webhook", "notifications", "notification"]
ADMIN_PAGES = ["webhook_edit", "notification_edit"]
POSTS = [
    "webhooks",
    "webhook_edit",
    "notifications",
    "notification_edit",
    "_rotate",
    "_delete",
    "_redeliver",
    "_test",
    "_ndelete",
    "_wtest",
]


def _state():
    return (
        list(Webhook.objects.values_list("slug", "enabled", "secret_encrypted", "scheme")),
        list(NotificationTarget.objects.values_list("url", "enabled")),
        Run.objects.count(),
        NotificationAttempt.objects.count(),
    )


@pytest.mark.parametrize("name", READABLE + ADMIN_PAGES)
def test_page_access_by_persona(as_user, people, urls, client, name):
    url = urls[name]
    assert client.get(url).status_code == 302  # anonymous: to the login page
    expected = {"admin": 200, "operator": 200, "viewer": 200, "outsider": 404}
    if name in ADMIN_PAGES:
        expected.update(operator=403, viewer=403)
    for who, status in expected.items():
        assert as_user(people[who]).get(url).status_code == status, who


@pytest.mark.parametrize("name", POSTS)
def test_posts_by_persona_change_nothing(as_user, people, urls, client, name):
    before = _state()
    form = new_webhook_form(id="other", scheme="header", header_name="X-T")
    assert client.post(urls[name], form).status_code == 302
    for who, status in (("outsider", 404), ("viewer", 403), ("operator", 403)):
        assert as_user(people[who]).post(urls[name], form).status_code == status, who
        assert _state() == before, who


def test_secrets_are_not_shown_to_non_admins(as_user, people, project, client):
    webhook = make_webhook(project)
    session_key = f"webhook-secret:{webhook.pk}"
    viewer = as_user(people["viewer"])
    session = viewer.session
    session[session_key] = "whsec_should-not-show"
    session.save()
    assert "whsec_should-not-show" not in viewer.get("/p/acme/webhooks/deploy/").content.decode()
    assert "Rotate secret" not in viewer.get("/p/acme/webhooks/deploy/").content.decode()


@pytest.mark.parametrize("scheme", ["studio", "github", "header"])
def test_a_test_delivery_goes_through_verification_and_starts_a_run(
    as_user, people, project, scheme
):
    make_webhook(project, scheme=scheme, header_name="X-Token" if scheme == "header" else "")
    client = as_user(people["admin"])
    response = client.post("/p/acme/webhooks/deploy/test/", follow=True)
    assert "Test delivered: a run started." in response.content.decode()
    delivery = WebhookDelivery.objects.get()
    assert delivery.verification == "verified" and delivery.status_code == 202
    assert Run.objects.get().config == {"event": "test"}


def test_the_deliveries_card_refreshes_only_when_something_new_arrived(as_user, people, project):
    make_webhook(project)
    client = as_user(people["viewer"])
    poll = {"HTTP_HX_REQUEST": "true"}
    assert client.get("/p/acme/webhooks/deploy/?deliveries_after=", **poll).status_code == 204
    raw = b'{"batchSize": 3}'
    client.post(
        "/hooks/acme/deploy",
        raw,
        content_type="application/json",
        headers={"X-Studio-Signature": signing.sign_studio(SECRET, raw)},
    )
    fresh = client.get("/p/acme/webhooks/deploy/?deliveries_after=", **poll)
    assert fresh.status_code == 200
    html = fresh.content.decode()
    assert "202" in html and "<html" not in html
    newest = WebhookDelivery.objects.get().received_at.isoformat()
    assert newest in html  # the next poll asks for what is newer than this
    again = client.get("/p/acme/webhooks/deploy/", {"deliveries_after": newest}, **poll)
    assert again.status_code == 204
