"""The webhooks and notifications API: shapes, validation, rotation, deliveries, attempts, and
who may do what (read-write token manages, read-only reads, another project's token gets 404,
no token 401)."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from runs import signing
from runs.models import (
    ApiToken,
    NotificationAttempt,
    NotificationOutbox,
    NotificationTarget,
    Run,
    Webhook,
)

from .conftest import make_webhook

pytestmark = pytest.mark.django_db


class Api:
    def __init__(self, token: str | None):
        self.token = token
        self.client = Client()

    def _headers(self):
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}

    def get(self, path, params=None):
        return self.client.get(f"/api{path}", params or {}, **self._headers())

    def post(self, path, body=None):
        data = "" if body is None else json.dumps(body)
        return self.client.post(
            f"/api{path}", data, content_type="application/json", **self._headers()
        )

    def patch(self, path, body):
        return self.client.patch(
            f"/api{path}", json.dumps(body), content_type="application/json", **self._headers()
        )

    def delete(self, path):
        return self.client.delete(f"/api{path}", **self._headers())


@pytest.fixture
def api(project):
    return Api(ApiToken.issue(project, "ci")[1])


@pytest.fixture
def reader(project):
    return Api(ApiToken.issue(project, "reader", read_only=True)[1])


@pytest.fixture
def outsider(other_project):
    return Api(ApiToken.issue(other_project, "outsider")[1])


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.STUDIO_BASE_URL = "https://studio.example.com"
    settings.STUDIO_NOTIFY_ALLOW_PRIVATE_URLS = True


def error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "code", "detail"}
    if code:
        assert body["error"]["code"] == code
    return body["error"]


# --- webhooks ---------------------------------------------------------------------------------


def test_create_answers_201_with_the_secret_once(api, client):
    response = api.post(
        "/projects/acme/webhooks",
        {
            "id": "deploy",
            "target": "task:sync-data",
            "event_filter": {
                "mode": "any",
                "conditions": [{"path": "ref", "operator": "equals", "value": "main"}],
            },
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    hook = body["webhook"]
    assert hook["id"] == "deploy" and hook["scheme"] == "studio" and hook["payload_to"] == "config"
    assert hook["url"] == "https://studio.example.com/hooks/acme/deploy"
    assert secret not in api.get("/projects/acme/webhooks/deploy").content.decode()
    assert secret not in api.get("/projects/acme/webhooks").content.decode()
    # The secret verifies.
    raw = b'{"ref": "main"}'
    signed = client.post(
        "/hooks/acme/deploy",
        raw,
        content_type="application/json",
        headers={"X-Studio-Signature": signing.sign_studio(secret, raw)},
    )
    assert signed.status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "Bad Id", "target": "task:sync-data"}, "id"),
        ({"id": "x", "target": "task:nope"}, "target"),
        ({"id": "x", "target": "sync-data"}, "target"),
        ({"id": "x", "target": "task:onboard-customer"}, "payload_to"),
        ({"id": "x", "target": "workflow:w", "payload_to": "config"}, "payload_to"),
        ({"id": "x", "target": "task:sync-data", "scheme": "header"}, "header_name"),
        (
            {"id": "x", "target": "task:sync-data", "scheme": "header", "header_name": "Host"},
            "header_name",
        ),
        (
            {"id": "x", "target": "task:sync-data", "event_filter": {"mode": "most"}},
            "event_filter.mode",
        ),
        ({"id": "x", "target": "task:sync-data", "scheme": "md5"}, "scheme"),
        ({"id": "x", "target": "task:sync-data", "secret": "mine"}, "secret"),
    ],
)
def test_bad_webhooks_are_422_naming_the_field(api, body, field):
    err = error(api.post("/projects/acme/webhooks", body), 422)
    assert field in [d["field"] for d in err["detail"]]
    assert not Webhook.objects.exists()


def test_a_task_needing_input_works_with_payload_to_input(api):
    response = api.post(
        "/projects/acme/webhooks",
        {"id": "onboard", "target": "task:onboard-customer", "payload_to": "input"},
    )
    assert response.status_code == 201


def test_a_taken_id_is_409(api, project):
    make_webhook(project, "deploy")
    error(api.post("/projects/acme/webhooks", {"id": "deploy", "target": "task:sync-data"}), 409)


def test_patch_delete_and_unknown(api, project):
    make_webhook(project, "deploy")
    response = api.patch(
        "/projects/acme/webhooks/deploy",
        {"enabled": False, "scheme": "header", "header_name": "X-Token"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["enabled"] is False and response.json()["header_name"] == "X-Token"
    err = error(api.patch("/projects/acme/webhooks/deploy", {"target": "task:nope"}), 422)
    assert err["detail"][0]["field"] == "target"
    assert Webhook.objects.get().target == "task:sync-data"
    assert api.delete("/projects/acme/webhooks/deploy").status_code == 204
    error(api.get("/projects/acme/webhooks/deploy"), 404, "not_found")


def test_rotate_secret_keeps_the_old_one_for_the_overlap(api, project, client):
    old_secret = "whsec_old"
    make_webhook(project, "deploy", secret=old_secret)
    response = api.post("/projects/acme/webhooks/deploy/rotate-secret", {"overlap_seconds": 600})
    assert response.status_code == 200, response.content
    new_secret = response.json()["secret"]
    assert response.json()["webhook"]["previous_secret_expires_at"]
    for i, secret in enumerate((old_secret, new_secret)):
        raw = json.dumps({"n": i}).encode()
        signed = client.post(
            "/hooks/acme/deploy",
            raw,
            content_type="application/json",
            headers={"X-Studio-Signature": signing.sign_studio(secret, raw)},
        )
        assert signed.status_code == 202
    # Without overlap the old secret stops at once.
    newest = api.post(
        "/projects/acme/webhooks/deploy/rotate-secret", {"overlap_seconds": 0}
    ).json()["secret"]
    raw = b'{"n": 9}'
    refused = client.post(
        "/hooks/acme/deploy",
        raw,
        content_type="application/json",
        headers={"X-Studio-Signature": signing.sign_studio(new_secret, raw)},
    )
    assert refused.status_code == 401
    assert newest != new_secret


def test_deliveries_are_listed_newest_first_with_paging(api, project, client):
    make_webhook(project, "deploy")
    from .conftest import SECRET

    for i in range(3):
        raw = json.dumps({"n": i}).encode()
        client.post(
            "/hooks/acme/deploy",
            raw,
            content_type="application/json",
            headers={"X-Studio-Signature": signing.sign_studio(SECRET, raw, int(time.time()))},
        )
    client.post("/hooks/acme/deploy", b"{}", content_type="application/json")  # unsigned
    page = api.get("/projects/acme/webhooks/deploy/deliveries", {"limit": 3}).json()
    assert [d["status_code"] for d in page["data"]] == [401, 202, 202]
    assert page["data"][0]["body"] is None and page["data"][1]["body"] == '{"n": 2}'
    rest = api.get(
        "/projects/acme/webhooks/deploy/deliveries", {"cursor": page["page_info"]["next"]}
    ).json()
    assert [d["body"] for d in rest["data"]] == ['{"n": 0}']
    assert rest["page_info"]["next"] is None
    assert page["data"][1]["run_id"] == Run.objects.order_by("-created_at").first().pk
    error(api.get("/projects/acme/webhooks/deploy/deliveries", {"cursor": "zzz"}), 422)


def test_file_webhooks_cannot_be_changed_through_the_api(api, project):
    make_webhook(project, "deploy", source="file", secret_env="STUDIO_WEBHOOK_SECRET_X")
    error(api.patch("/projects/acme/webhooks/deploy", {"enabled": False}), 409, "defined_in_file")
    error(api.delete("/projects/acme/webhooks/deploy"), 409)
    error(api.post("/projects/acme/webhooks/deploy/rotate-secret"), 409)


# --- notifications ----------------------------------------------------------------------------


def test_notifications_create_json_with_secret_and_slack_without(api):
    response = api.post(
        "/projects/acme/notifications",
        {"url": "https://hooks.example.com/x", "outcomes": ["failed", "recovered"]},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    n = body["notification"]
    assert n["kind"] == "json" and n["outcomes"] == ["failed", "recovered"]
    assert n["targets"] == [] and n["include_children"] is False and n["failing"] is False
    slack = api.post(
        "/projects/acme/notifications",
        {"kind": "slack", "url": "https://hooks.example.com/y", "targets": ["task:sync-data"]},
    )
    assert slack.status_code == 201 and slack.json()["secret"] is None
    listed = api.get("/projects/acme/notifications").json()["data"]
    assert [t["kind"] for t in listed] == ["slack", "json"]
    assert body["secret"] not in json.dumps(listed)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://x"}, "url"),
        ({"url": "https://x.example.com", "outcomes": ["exploded"]}, "outcomes.0"),
        ({"url": "https://x.example.com", "outcomes": []}, "outcomes"),
        ({"url": "https://x.example.com", "targets": ["sync"]}, "targets.0"),
        ({"url": "https://x.example.com", "kind": "email"}, "kind"),
    ],
)
def test_bad_notifications_are_422(api, body, field):
    err = error(api.post("/projects/acme/notifications", body), 422)
    assert field in [d["field"] for d in err["detail"]]


def test_private_urls_are_refused_by_default(api, settings):
    settings.STUDIO_NOTIFY_ALLOW_PRIVATE_URLS = False
    err = error(api.post("/projects/acme/notifications", {"url": "http://127.0.0.1:8000/x"}), 422)
    assert err["detail"][0]["field"] == "url" and "internal" in err["detail"][0]["message"]


def test_patch_delete_and_attempts(api, project):
    created = api.post("/projects/acme/notifications", {"url": "https://a.example.com"}).json()
    nid = created["notification"]["id"]
    patched = api.patch(f"/projects/acme/notifications/{nid}", {"outcomes": ["completed"]})
    assert patched.status_code == 200 and patched.json()["outcomes"] == ["completed"]
    target = NotificationTarget.objects.get()
    outbox = NotificationOutbox.objects.create(
        target=target, project=project, event="run.failed", payload={}
    )
    NotificationAttempt.objects.create(outbox=outbox, ok=False, error="ConnectError: refused")
    NotificationAttempt.objects.create(outbox=outbox, ok=True, status_code=200)
    attempts = api.get(f"/projects/acme/notifications/{nid}/attempts").json()["data"]
    assert [(a["ok"], a["status_code"]) for a in attempts] == [(True, 200), (False, None)]
    assert attempts[0]["delivery_id"] == str(outbox.delivery_id)
    error(api.get("/projects/acme/notifications/not-a-uuid"), 404)
    assert api.delete(f"/projects/acme/notifications/{nid}").status_code == 204
    assert not NotificationTarget.objects.exists()


# --- access -----------------------------------------------------------------------------------


@pytest.fixture
def existing(project):
    make_webhook(project, "deploy")
    target = NotificationTarget(project=project, url="https://a.example.com")
    target.set_secret()
    target.save()
    return str(target.pk)


READS = [
    "/projects/acme/webhooks",
    "/projects/acme/webhooks/deploy",
    "/projects/acme/webhooks/deploy/deliveries",
    "/projects/acme/notifications",
    "/projects/acme/notifications/{nid}",
    "/projects/acme/notifications/{nid}/attempts",
]
WRITES = [
    ("post", "/projects/acme/webhooks", {"id": "new", "target": "task:sync-data"}),
    ("patch", "/projects/acme/webhooks/deploy", {"enabled": False}),
    ("delete", "/projects/acme/webhooks/deploy", None),
    ("post", "/projects/acme/webhooks/deploy/rotate-secret", None),
    ("post", "/projects/acme/notifications", {"url": "https://b.example.com"}),
    ("patch", "/projects/acme/notifications/{nid}", {"enabled": False}),
    ("delete", "/projects/acme/notifications/{nid}", None),
]


def _state():
    return (
        list(Webhook.objects.values_list("slug", "enabled", "secret_encrypted")),
        list(NotificationTarget.objects.values_list("url", "enabled")),
    )


@pytest.mark.parametrize("path", READS)
def test_reads_by_persona(existing, api, reader, outsider, path):
    path = path.format(nid=existing)
    assert api.get(path).status_code == 200
    assert reader.get(path).status_code == 200
    error(outsider.get(path), 404)
    error(Api(None).get(path), 401, "unauthorized")


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_writes_by_persona(existing, api, reader, outsider, method, path, body):
    path = path.format(nid=existing)
    before = _state()
    for who, status in ((reader, 403), (outsider, 404), (Api(None), 401)):
        call = getattr(who, method)
        response = call(path) if method == "delete" else call(path, body)
        error(response, status)
        assert _state() == before
    call = getattr(api, method)
    response = call(path) if method == "delete" else call(path, body)
    assert response.status_code in (200, 201, 204), response.content


def test_crafted_input_is_refused_not_a_500(api):
    bad_filter = {
        "id": "x",
        "target": "task:sync-data",
        "event_filter": {"conditions": [{"path": "a", "operator": "equals", "value": "\u0000"}]},
    }
    err = error(api.post("/projects/acme/webhooks", bad_filter), 422)
    assert err["detail"][0]["field"] == "event_filter"
    error(api.get("/projects/acme/webhooks/a%00b"), 404)
    error(api.get("/projects/acme/notifications/a%00b"), 404)


def test_the_accepted_run_is_exactly_what_the_runs_api_shows(api, project, client):
    from .conftest import SECRET

    make_webhook(project)
    raw = b'{"batchSize": 1}'
    response = client.post(
        "/hooks/acme/deploy",
        raw,
        content_type="application/json",
        headers={"X-Studio-Signature": signing.sign_studio(SECRET, raw)},
    )
    run = response.json()["run"]
    assert api.get(f"/runs/{run['run_id']}").json() == run


def test_nulls_in_a_patch(api, project):
    make_webhook(project, event_filter={"conditions": []}, description="d")
    response = api.patch(
        "/projects/acme/webhooks/deploy",
        {
            "name": None,
            "description": None,
            "enabled": None,
            "scheme": None,
            "payload_to": None,
            "event_filter": None,
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "" and body["description"] == "" and body["event_filter"] is None
    assert body["enabled"] is True and body["scheme"] == "studio"
