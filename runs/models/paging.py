"""Keyset pagination of runs, newest first, and the cursors that name a page's edge.

One implementation for the REST API (opaque `cursor=` strings) and the dashboard (`?before=` and
`?after=` in the URL). A page is cut at a position, the (created_at, id) of the run at its edge,
never at an offset: runs created between two requests shift no page boundary, and every page
costs the same index range scan.

Cursors come from the outside, so decoding one is strict and bounded: anything this module did
not hand out (too long, not base64, a timestamp out of datetime's range, a malformed id) raises
InvalidCursor, which callers answer with a 4xx, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from .ids import is_run_id

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CURSOR_CHARS = 200  # a real one is under 100; a longer one is not ours
_MICROS = re.compile(r"-?[0-9]{1,20}")


class InvalidCursor(ValueError):
    """A cursor (or page position) that this module did not hand out."""


@dataclass(frozen=True)
class Position:
    """The run at a page's edge: (created_at, run id), the keyset's sort key."""

    created_at: datetime
    run_id: str

    @classmethod
    def of(cls, run: Any) -> Position:
        return cls(run.created_at, run.pk)

    def token(self) -> str:
        """`<microseconds since 1970 UTC>~<run id>`: exact (no rounding) and URL-safe."""
        delta = self.created_at - EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return f"{micros}~{self.run_id}"

    @classmethod
    def parse(cls, token: str) -> Position:
        if not isinstance(token, str) or len(token) > MAX_CURSOR_CHARS:
            raise InvalidCursor("too long")
        micros, _, run_id = token.partition("~")
        if not _MICROS.fullmatch(micros) or not is_run_id(run_id):
            raise InvalidCursor("not a page position")
        try:
            created_at = EPOCH + timedelta(microseconds=int(micros))
        except OverflowError:
            raise InvalidCursor("timestamp out of range") from None
        return cls(created_at, run_id)


@dataclass
class KeysetPage:
    """One page of rows, newest first, and the positions of the pages beside it (or None)."""

    rows: list
    older: Position | None  # pass as `before` for the next, older page
    newer: Position | None  # pass as `after` for the previous, newer page


def keyset_page(
    queryset: QuerySet,
    *,
    limit: int,
    before: Position | None = None,
    after: Position | None = None,
) -> KeysetPage:
    """Runs strictly older than `before`, or strictly newer than `after`, or the newest; at most
    `limit`, newest first. One query, limit + 1 rows (the extra one says whether more follow)."""
    # A range on created_at plus an exclusion of the edge's ties, not `(a < x) OR (a = x AND
    # id < y)`: the range is what lets the (project, -created_at, -id) index start at the edge
    # instead of scanning from the newest run (PostgreSQL cannot bound an index scan by an OR).
    if after is not None:
        rows = list(
            queryset.filter(created_at__gte=after.created_at)
            .exclude(created_at=after.created_at, id__lte=after.run_id)
            .order_by("created_at", "id")[: limit + 1]
        )
        page, more_older, more_newer = rows[:limit][::-1], True, len(rows) > limit
    else:
        newest_first = queryset.order_by("-created_at", "-id")
        if before is not None:
            newest_first = newest_first.filter(created_at__lte=before.created_at).exclude(
                created_at=before.created_at, id__gte=before.run_id
            )
        rows = list(newest_first[: limit + 1])
        page, more_older, more_newer = rows[:limit], len(rows) > limit, before is not None
    return KeysetPage(
        rows=page,
        older=Position.of(page[-1]) if page and more_older else None,
        newer=Position.of(page[0]) if page and more_newer else None,
    )


# --- Opaque cursors (the REST API) ---------------------------------------------------------------
# base64url of a short text, so that clients treat them as opaque: `n~<position>` (older),
# `p~<position>` (newer) for runs, `e~<event id>` for a run's events.

_DIRECTIONS = {"n": "next", "p": "prev"}
MAX_EVENT_ID = 2**63 - 1  # BigAutoField


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _decode(cursor: str) -> str:
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor("too long")
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise InvalidCursor("not base64") from None


def run_cursor(direction: str, position: Position) -> str:
    """`direction` is "next" (older runs) or "prev" (newer runs)."""
    return _encode(f"{direction[0]}~{position.token()}")


def parse_run_cursor(cursor: str) -> tuple[str, Position]:
    """(direction, position) of a cursor from `run_cursor`; InvalidCursor for anything else."""
    kind, _, token = _decode(cursor).partition("~")
    if kind not in _DIRECTIONS:
        raise InvalidCursor("not a runs cursor")
    return _DIRECTIONS[kind], Position.parse(token)


def page_of_runs(queryset: QuerySet, cursor: str | None, limit: int) -> tuple[list, dict]:
    """The page a cursor names (the newest without one) and its wire `page_info`."""
    before = after = None
    if cursor is not None:
        direction, position = parse_run_cursor(cursor)
        before, after = (position, None) if direction == "next" else (None, position)
    page = keyset_page(queryset, limit=limit, before=before, after=after)
    return page.rows, {
        "self": cursor,
        "first": None,
        "next": run_cursor("next", page.older) if page.older else None,
        "prev": run_cursor("prev", page.newer) if page.newer else None,
    }


def event_cursor(after_event_id: int) -> str:
    return _encode(f"e~{after_event_id}")


def parse_event_cursor(cursor: str) -> int:
    kind, _, number = _decode(cursor).partition("~")
    if kind != "e" or not number.isdigit() or len(number) > 19 or int(number) > MAX_EVENT_ID:
        raise InvalidCursor("not an events cursor")
    return int(number)


def _stamp_token(kind: str, row: Any, field: str) -> str:
    delta = getattr(row, field) - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return _encode(f"{kind}~{micros}~{row.pk}")


def page_by(queryset: QuerySet, field: str, cursor: str | None, limit: int) -> tuple[list, dict]:
    """Newest first by (`field`, pk), for the ledgers beside runs (webhook deliveries,
    notification attempts, schedule occurrences): the page a cursor names and its `page_info`.
    Cursors: `o~<µs>~<pk>` for older rows, `n~<µs>~<pk>` for newer ones."""
    direction = None
    if cursor is not None:
        direction, _, rest = _decode(cursor).partition("~")
        micros, _, key = rest.partition("~")
        if direction not in ("o", "n") or not _MICROS.fullmatch(micros) or not 0 < len(key) <= 64:
            raise InvalidCursor("not a page cursor")
        try:
            stamp = EPOCH + timedelta(microseconds=int(micros))
            if direction == "o":
                edge = Q(**{f"{field}__lt": stamp}) | Q(**{field: stamp, "pk__lt": key})
            else:
                edge = Q(**{f"{field}__gt": stamp}) | Q(**{field: stamp, "pk__gt": key})
            queryset = queryset.filter(edge)
        except (OverflowError, ValueError, ValidationError):
            raise InvalidCursor("not a page position") from None
    if direction == "n":
        rows = list(queryset.order_by(field, "pk")[: limit + 1])
        page, more_older, more_newer = rows[:limit][::-1], True, len(rows) > limit
    else:
        rows = list(queryset.order_by(f"-{field}", "-pk")[: limit + 1])
        page, more_older, more_newer = rows[:limit], len(rows) > limit, direction == "o"
    return page, {
        "self": cursor,
        "first": None,
        "next": _stamp_token("o", page[-1], field) if page and more_older else None,
        "prev": _stamp_token("n", page[0], field) if page and more_newer else None,
    }
