"""Webhook definition files under `webhooks/`. No Django here: discovery may run sandboxed.

A file `webhooks/github/push.py` defines the webhook `github-push` with a module-level dict:

    webhook = {
        "name": "Deploy on push",
        "target": "task:deploy",
        "scheme": "github",
        "secret_env": "STUDIO_WEBHOOK_SECRET_GITHUB",
        "event_filter": {"mode": "all", "conditions": [
            {"path": "headers.x-github-event", "operator": "equals", "value": "push"}]},
    }

The secret never lives in the file: `secret_env` names an environment variable, which must
start with STUDIO_WEBHOOK_SECRET_ so that the env filter keeps it from every run.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .definitions import exec_definition_file, iter_task_files, task_id_for
from .event_filter import check_filter

SECRET_ENV_PREFIX = "STUDIO_WEBHOOK_SECRET_"
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
TARGET_RE = re.compile(r"(task|workflow):[A-Za-z0-9][A-Za-z0-9_.-]{0,200}")
HEADER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")
SCHEMES = ("studio", "github", "header")
# Headers a shared secret may not travel in: the server, proxies or the body parser own them.
RESERVED_HEADERS = {
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "cookie",
    "x-studio-signature",
    "x-hub-signature-256",
    "x-studio-delivery",
    "x-github-delivery",
}
FILE_KEYS = {
    "name",
    "description",
    "target",
    "event_filter",
    "payload_to",
    "enabled",
    "scheme",
    "header_name",
    "secret_env",
    "project",
}


def check_fields(data: dict, *, partial: bool = False) -> list[tuple[str, str]]:
    """Problems with webhook fields as (field, message). Shared by files, API and dashboard.

    Only the shape is checked here; whether the target exists is the caller's business."""
    problems: list[tuple[str, str]] = []

    def has(key: str) -> bool:
        return key in data and (data[key] is not None or key == "event_filter")

    if not partial or has("target"):
        target = data.get("target")
        if not isinstance(target, str) or not TARGET_RE.fullmatch(target):
            problems.append(("target", "must look like task:<id> or workflow:<id>"))
    for key, limit in (("name", 200), ("description", 5000)):
        if has(key) and (not isinstance(data[key], str) or len(data[key]) > limit):
            problems.append((key, f"must be text of at most {limit} characters"))
    if has("payload_to") and data["payload_to"] not in ("config", "input"):
        problems.append(("payload_to", "must be config or input"))
    elif (
        has("payload_to")
        and data["payload_to"] == "config"
        and str(data.get("target", "")).startswith("workflow:")
    ):
        problems.append(("payload_to", "a workflow always takes the payload as its input"))
    if has("enabled") and not isinstance(data["enabled"], bool):
        problems.append(("enabled", "must be true or false"))
    scheme = data.get("scheme", None if partial else "studio")
    if scheme is not None and scheme not in SCHEMES:
        problems.append(("scheme", "must be studio, github or header"))
    if scheme == "header":
        name = data.get("header_name")
        if not isinstance(name, str) or not HEADER_NAME_RE.fullmatch(name):
            problems.append(("header_name", "a header name like X-Webhook-Token is required"))
        elif name.lower() in RESERVED_HEADERS:
            problems.append(("header_name", f"{name} cannot carry a shared secret"))
    problems += check_filter(data.get("event_filter"))
    return problems


def check_secret_env(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return f"secret_env is required: the name of an environment variable starting with {SECRET_ENV_PREFIX}"
    if not name.startswith(SECRET_ENV_PREFIX) or not re.fullmatch(r"[A-Z0-9_]+", name):
        return f"secret_env must be an environment variable name starting with {SECRET_ENV_PREFIX}"
    return None


def load_webhook_file(path: Path | str, webhook_id: str, source: bytes | None = None) -> dict:
    """Import one webhook file (or run `source` as it) and return its definition as a plain
    dict (with `id` and `path`); raise ValueError saying what is wrong."""
    path = Path(path)
    if not SLUG_RE.fullmatch(webhook_id):
        raise ValueError(
            f"webhook id {webhook_id!r} (from the path) must be lowercase letters, digits, - or _"
        )
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    safe_id = re.sub(r"\W", "_", webhook_id)
    module = exec_definition_file(path, f"studio_webhooks.{safe_id}_{digest}", source)
    data = getattr(module, "webhook", None)
    if not isinstance(data, dict):
        raise ValueError("defines no webhook: assign a dict to a module-level name `webhook`")
    unknown = set(data) - FILE_KEYS
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; allowed: {', '.join(sorted(FILE_KEYS))}"
        )
    if "secret" in data:
        raise ValueError("a file never holds the secret: name its variable in secret_env")
    problems = check_fields(data)
    problem = check_secret_env(data.get("secret_env"))
    if problem:
        problems.append(("secret_env", problem))
    if "project" in data and (
        not isinstance(data["project"], str) or not SLUG_RE.fullmatch(data["project"])
    ):
        problems.append(("project", "must be a project slug"))
    if problems:
        raise ValueError("; ".join(f"{f}: {m}" for f, m in problems))
    target = data["target"]
    return {
        "id": webhook_id,
        "path": str(path),
        "name": data.get("name") or webhook_id,
        "description": data.get("description") or "",
        "target": target,
        "event_filter": data.get("event_filter"),
        "payload_to": "input"
        if target.startswith("workflow:")
        else data.get("payload_to", "config"),
        "enabled": data.get("enabled", True),
        "scheme": data.get("scheme", "studio"),
        "header_name": data.get("header_name", "") if data.get("scheme") == "header" else "",
        "secret_env": data["secret_env"],
        "project": data.get("project"),
    }


@dataclass
class WebhookFiles:
    webhooks: dict[str, dict] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, message)


BatchLoader = Callable[[Path, list[tuple[Path, str]]], dict]


def load_in_process(root: Path, items: list[tuple[Path, str]]) -> dict[Path, dict | str]:
    out: dict[Path, dict | str] = {}
    for path, webhook_id in items:
        try:
            out[path] = load_webhook_file(path, webhook_id)
        except ValueError as exc:
            out[path] = str(exc)
    return out


def discover_webhook_files(root: Path | str, loader: BatchLoader | None = None) -> WebhookFiles:
    """Every webhook file under `root` (skipping what task discovery skips), loaded by `loader`
    ({path: data or why not}; Studio's processes pass the sandboxed one)."""
    root = Path(root)
    found = WebhookFiles()
    items = [(path, task_id_for(path, root)) for path in iter_task_files(root)]
    loaded = (loader or load_in_process)(root, items)
    for path, webhook_id in items:
        display = os.path.relpath(path, root.parent)
        data = loaded.get(path, "not loaded")
        if isinstance(data, str):
            found.errors.append((display, data))
            continue
        if webhook_id in found.webhooks:
            found.errors.append((display, f"webhook id {webhook_id!r} is defined twice"))
            continue
        found.webhooks[webhook_id] = data
    return found


def signature(root: Path | str) -> tuple:
    """Changes whenever a webhook file is added, removed or modified."""
    stamps = []
    for path in iter_task_files(Path(root)):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        stamps.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(stamps)
