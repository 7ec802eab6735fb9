"""`manage.py webhook run <id> --payload file.json` runs the target here with that payload."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from .conftest import make_webhook

pytestmark = pytest.mark.django_db


def payload_file(tmp_path, data) -> str:
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_it_runs_the_target_with_the_payload_as_config(project, tmp_path, capsys):
    make_webhook(project)
    call_command("webhook", "run", "deploy", "--payload", payload_file(tmp_path, {"batchSize": 2}))
    out = capsys.readouterr().out
    assert "payload as config of task:sync-data" in out
    assert "Task completed" in out
    assert json.loads(out.strip().splitlines()[-1])["synced"] >= 0


def test_input_is_validated_and_the_filter_applies(project, tmp_path, capsys):
    make_webhook(
        project,
        payload_to="input",
        event_filter={
            "conditions": [{"path": "headers.x-event", "operator": "equals", "value": "go"}]
        },
    )
    path = payload_file(tmp_path, {"limit": 1})
    call_command("webhook", "run", "deploy", "--payload", path)
    assert "Filtered out" in capsys.readouterr().out
    call_command("webhook", "run", "deploy", "--payload", path, "--header", "X-Event:go")
    assert "Task completed" in capsys.readouterr().out
    with pytest.raises(CommandError, match="limit"):
        call_command(
            "webhook",
            "run",
            "deploy",
            "--skip-filter",
            "--payload",
            payload_file(tmp_path, {"limit": 0}),
        )


def test_unknown_webhooks_and_bad_payloads_say_so(project, tmp_path):
    make_webhook(project)
    with pytest.raises(CommandError, match="No webhook 'nope'"):
        call_command("webhook", "run", "nope", "--payload", payload_file(tmp_path, {}))
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    with pytest.raises(CommandError, match="JSON object"):
        call_command("webhook", "run", "deploy", "--payload", str(bad))
