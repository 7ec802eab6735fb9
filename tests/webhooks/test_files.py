"""Webhooks defined in files under webhooks/: the Django-free loader and the sync into the DB."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runs.models import Run, Webhook
from runs.webhook_files import discover_webhook_files, load_webhook_file
from runs.webhooks import sync_file_webhooks

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
webhook = {
    "name": "Deploy on push",
    "target": "task:sync-data",
    "scheme": "header",
    "header_name": "X-Token",
    "secret_env": "STUDIO_WEBHOOK_SECRET_DEPLOY",
    "event_filter": {"mode": "all", "conditions": [{"path": "ref", "operator": "exists"}]},
}
"""


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_loader_returns_a_plain_dict(tmp_path):
    path = write(tmp_path, "github/push.py", GOOD)
    data = load_webhook_file(path, "github-push")
    assert data["id"] == "github-push"
    assert data["target"] == "task:sync-data" and data["payload_to"] == "config"
    assert data["secret_env"] == "STUDIO_WEBHOOK_SECRET_DEPLOY"
    assert data["scheme"] == "header" and data["header_name"] == "X-Token"


def test_the_loader_needs_no_django(tmp_path):
    path = write(tmp_path, "push.py", GOOD)
    code = (
        "import sys; from runs.webhook_files import load_webhook_file; "
        f"print(load_webhook_file({str(path)!r}, 'push')['target']); "
        "print(any(m.startswith('django') for m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["task:sync-data", "False"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = 1", "defines no webhook"),
        ("webhook = {'target': 'task:a'}", "secret_env is required"),
        ("webhook = {'target': 'task:a', 'secret_env': 'GITHUB_SECRET'}", "STUDIO_WEBHOOK_SECRET_"),
        (
            "webhook = {'target': 'task:a', 'secret_env': 'STUDIO_WEBHOOK_SECRET_A', 'secret': 'x'}",
            "unknown key",
        ),
        ("webhook = {'target': 'nope', 'secret_env': 'STUDIO_WEBHOOK_SECRET_A'}", "target"),
        ("webhook = {", "syntax error"),
        ("raise RuntimeError('boom')", "RuntimeError while importing: boom"),
    ],
)
def test_broken_files_say_why(tmp_path, text, message):
    path = write(tmp_path, "bad.py", text)
    with pytest.raises(ValueError, match=message):
        load_webhook_file(path, "bad")


def test_discovery_reports_errors_and_keeps_the_rest(tmp_path):
    write(tmp_path, "webhooks/good.py", GOOD)
    write(tmp_path, "webhooks/bad.py", "x = 1")
    write(tmp_path, "webhooks/_private.py", "x = 1")
    found = discover_webhook_files(tmp_path / "webhooks")
    assert list(found.webhooks) == ["good"]
    assert [p for p, _ in found.errors] == ["webhooks/bad.py"]


@pytest.mark.django_db
def test_file_webhooks_sync_into_the_project_and_verify_with_the_env_secret(
    project, settings, tmp_path, client, monkeypatch
):
    settings.STUDIO_WEBHOOKS_DIR = tmp_path / "webhooks"
    write(tmp_path, "webhooks/deploy.py", GOOD)
    monkeypatch.setenv("STUDIO_WEBHOOK_SECRET_DEPLOY", "from-the-env")
    sync_file_webhooks(project)
    webhook = Webhook.objects.get(project=project, slug="deploy")
    assert webhook.source == "file" and webhook.secret_encrypted == ""
    response = client.post(
        "/hooks/acme/deploy",
        b'{"ref": "main"}',
        content_type="application/json",
        headers={"X-Token": "from-the-env"},
    )
    assert response.status_code == 202, response.content
    assert Run.objects.get().trigger_id == "deploy"
    # The run never sees the secret: STUDIO_* is hidden from tasks.
    from runs.definitions import filtered_env

    assert "STUDIO_WEBHOOK_SECRET_DEPLOY" not in filtered_env()


@pytest.mark.django_db
def test_a_removed_file_disables_its_webhook(project, settings, tmp_path, client, monkeypatch):
    settings.STUDIO_WEBHOOKS_DIR = tmp_path / "webhooks"
    path = write(tmp_path, "webhooks/deploy.py", GOOD)
    monkeypatch.setenv("STUDIO_WEBHOOK_SECRET_DEPLOY", "from-the-env")
    sync_file_webhooks(project)
    path.unlink()
    response = client.post(
        "/hooks/acme/deploy",
        b"{}",
        content_type="application/json",
        headers={"X-Token": "from-the-env"},
    )
    assert response.status_code == 404
    assert Webhook.objects.get(slug="deploy").enabled is False


@pytest.mark.django_db
def test_a_file_never_overrides_an_api_webhook(project, settings, tmp_path):
    from .conftest import make_webhook

    make_webhook(project, "deploy")
    settings.STUDIO_WEBHOOKS_DIR = tmp_path / "webhooks"
    write(tmp_path, "webhooks/deploy.py", GOOD)
    errors = sync_file_webhooks(project)
    assert any("taken" in message for _, message in errors)
    assert Webhook.objects.get(slug="deploy").source == "api"
