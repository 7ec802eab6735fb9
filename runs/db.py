"""Database connection habits shared by the API and the worker. No models here."""

from __future__ import annotations

import time

from django.db import DEFAULT_DB_ALIAS, connections

HEALTH_CHECK_EVERY_SECONDS = 1.0


def fewer_health_checks() -> None:
    """Ping the database before a unit of work's first query (an API request, a run a worker
    takes) at most once a second per connection, not before every one.

    With CONN_HEALTH_CHECKS (on for PostgreSQL) Django sends `SELECT 1` ahead of the first query
    after `close_old_connections()`: a second round trip for work that needs one or two. A
    connection that answered less than a second ago is trusted instead. If the database went away
    in that second, the query fails: the API answers 503 with Retry-After (clients retry) and
    Django drops the connection at the end of the request; a worker takes the run again on a new
    connection (runs/worker/claim.py).
    """
    conn = connections[DEFAULT_DB_ALIAS]
    now = time.monotonic()
    if conn.connection is None:
        conn.studio_health_checked_at = now  # about to connect: as good as a ping
        return
    if not conn.health_check_enabled or conn.health_check_done:
        return  # checks off, or done for this unit of work
    if now - getattr(conn, "studio_health_checked_at", -HEALTH_CHECK_EVERY_SECONDS) < (
        HEALTH_CHECK_EVERY_SECONDS
    ):
        conn.health_check_done = True
    else:
        conn.studio_health_checked_at = now  # Django pings before the first query
