"""Secrets at rest and the `studio` signature scheme (inbound webhooks and outbound notifications).

Webhook and notification secrets must be recoverable (a signature can only be checked or made
with the secret itself), so they are encrypted, not hashed: Fernet (AES-128-CBC + HMAC-SHA256)
under a key derived from SECRET_KEY. Changing SECRET_KEY makes stored secrets unreadable; they
then verify nothing until rotated, which fails closed.

No Django import here except inside `_fernet`, so the signing helpers serve the SDK side too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from cryptography.fernet import Fernet, InvalidToken

SIGNATURE_HEADER = "X-Studio-Signature"
DELIVERY_HEADER = "X-Studio-Delivery"
EVENT_HEADER = "X-Studio-Event"
TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"

_fernets: dict[str, Fernet] = {}


def _fernet() -> Fernet:
    from django.conf import settings

    key = settings.SECRET_KEY
    if key not in _fernets:
        # A key of its own (domain-separated), never SECRET_KEY itself.
        raw = hmac.new(key.encode(), b"studio.secret-box.v1", hashlib.sha256).digest()
        _fernets[key] = Fernet(base64.urlsafe_b64encode(raw))
    return _fernets[key]


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str | None:
    """The plain secret, or None if it cannot be read (empty, or SECRET_KEY changed)."""
    if not token:
        return None
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def studio_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The lowercase hex HMAC-SHA256 over `"<t>." + body`."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_studio(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The value of X-Studio-Signature for `body`: `t=<unix seconds>,v1=<hex>`."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={studio_signature(secret, t, body)}"


def parse_studio_header(value: str) -> tuple[int, list[str]] | None:
    """(timestamp, [v1 signatures]) from `t=...,v1=...[,v1=...]`, or None if malformed."""
    timestamp = None
    signatures: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t" and item.isdigit() and len(item) <= 12:
            timestamp = int(item)
        elif key == "v1" and item:
            signatures.append(item)
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify_studio(
    secrets_: list[str],
    header: str | None,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """True if any v1 signature in `header` matches `body` under any of `secrets_` and its
    timestamp is within `tolerance` seconds of now (either way, for clock skew)."""
    parsed = parse_studio_header(header or "")
    if parsed is None:
        return False
    timestamp, signatures = parsed
    now = time.time() if now is None else now
    fresh = abs(now - timestamp) <= tolerance
    matched = False
    # Every comparison runs, whatever matched first, so timing says nothing about which did.
    for secret in secrets_:
        expected = studio_signature(secret, timestamp, body)
        for candidate in signatures:
            matched |= hmac.compare_digest(expected, candidate.lower())
    return matched and fresh


def sign_github(secret: str, body: bytes) -> str:
    """The value of X-Hub-Signature-256 for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_github(secrets_: list[str], header: str | None, body: bytes) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`."""
    if not header or not header.startswith("sha256="):
        return False
    candidate = header.removeprefix("sha256=").strip().lower()
    matched = False
    for secret in secrets_:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        matched |= hmac.compare_digest(expected, candidate)
    return matched


def verify_shared(secrets_: list[str], header: str | None) -> bool:
    """A shared secret sent as is in a header (for senders that can do no better)."""
    if not header:
        return False
    candidate = header.strip().encode()
    matched = False
    for secret in secrets_:
        matched |= hmac.compare_digest(secret.encode(), candidate)
    return matched
