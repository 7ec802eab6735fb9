"""Authenticated queue messages: Huey's signed pickles, keyed from SECRET_KEY.

Huey pickles what it enqueues and unpickles what it pops, so without a check anyone who can
write to Redis or to the SQLite queue file gets code executed inside a worker. Every message
carries an HMAC, and one that fails the check is refused before a byte of it is unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from huey import RedisHuey, SqliteHuey
from huey.serializer import SignedSerializer

log = logging.getLogger("runs.queue")


def queue_key(secret_key: str) -> str:
    """The queue's own key: derived from SECRET_KEY (rotating one rotates the other), so the
    queue never holds or needs SECRET_KEY itself, and runs, which cannot read SECRET_KEY,
    cannot sign a message either."""
    return hmac.new(secret_key.encode(), b"studio.queue.v1", hashlib.sha256).hexdigest()


class QueueSerializer(SignedSerializer):
    """A message whose signature does not match (forged, corrupt, or signed with another
    SECRET_KEY) is dropped and logged: the consumer logs the error and takes the next message,
    and if it stood for a real run, the sweeper finds that run pending in the database and
    enqueues it again."""

    def __init__(self, secret_key: str):
        super().__init__(secret=queue_key(secret_key), salt="studio.queue")

    def _unsign(self, signed: bytes) -> bytes:
        try:
            return super()._unsign(signed)
        except ValueError:
            log.error(
                "dropped a queue message (%d bytes) that failed its signature check: forged, "
                "corrupt, or signed with another SECRET_KEY",
                len(signed),
            )
            raise


class _NoRevocation:
    """Studio never revokes a queue message (a run's cancel lives in the database), so Huey's
    revocation bookkeeping, two queue round trips per message (a read before executing it and a
    delete after), is skipped."""

    def is_revoked(self, task, timestamp=None, peek=True):
        return False

    def delete(self, key):
        if isinstance(key, str) and key.startswith("r:"):  # Huey's revoke ids: 'r:<task id>'
            return False
        return super().delete(key)


class StudioRedisHuey(_NoRevocation, RedisHuey):
    pass


class StudioSqliteHuey(_NoRevocation, SqliteHuey):
    pass
