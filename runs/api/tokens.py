"""The API's token check, remembered for a moment in each process.

Every API request names its token; reading it (and its project) from the database on each one
was a third of a GET's cost. A token that checked out is remembered here, keyed by the hash of
its secret, for STUDIO_TOKEN_CACHE_SECONDS (2 s by default; 0 turns this off). So:
  - revoking a token through `ApiToken.revoke()` (dashboard, admin, anything) forgets it in the
    process that revoked it at once, and every other process stops accepting it within
    STUDIO_TOKEN_CACHE_SECONDS;
  - a token that was never valid is never remembered: each try with it reads the database, as
    before, so guessing costs what it did.
The remembered ApiToken (and its project) is shared by the requests of one process: views read
it and must not change it (`touch()` only moves `last_used_at`, at most once a minute).
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from ..models import TOKEN_PREFIX, ApiToken, hash_secret, token_revoked

MAX_ENTRIES = 10_000  # a bound, not a tuning knob: past it the cache starts over

_entries: dict[str, tuple[float, ApiToken]] = {}
_lock = threading.Lock()


def authenticate(secret: str) -> ApiToken | None:
    """The active token for `secret`, or None; from this process's memory when it was checked
    less than STUDIO_TOKEN_CACHE_SECONDS ago."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) < 20:
        return None
    ttl = settings.STUDIO_TOKEN_CACHE_SECONDS
    if ttl <= 0:
        return ApiToken.objects.authenticate(secret)
    key = hash_secret(secret)
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and entry[0] > now:
        return entry[1]
    token = ApiToken.objects.authenticate(secret)
    with _lock:
        if token is None:
            _entries.pop(key, None)
        else:
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
            _entries[key] = (now + ttl, token)
    return token


def forget(token_pk: int) -> None:
    """Drop every remembered check of this token (in this process)."""
    with _lock:
        for key in [k for k, (_, token) in _entries.items() if token.pk == token_pk]:
            del _entries[key]


def forget_all() -> None:
    with _lock:
        _entries.clear()


def _changed(sender, instance: ApiToken, **kwargs) -> None:
    # Saved (scope or name edited in the admin) or deleted: the next request reads it afresh.
    forget(instance.pk)


def _revoked(sender, token: ApiToken, **kwargs) -> None:
    forget(token.pk)


post_save.connect(_changed, sender=ApiToken, dispatch_uid="runs.api.tokens.saved")
post_delete.connect(_changed, sender=ApiToken, dispatch_uid="runs.api.tokens.deleted")
token_revoked.connect(_revoked, sender=ApiToken, dispatch_uid="runs.api.tokens.revoked")
