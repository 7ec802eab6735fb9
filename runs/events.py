"""Storing a run's events: the append-only stream every surface reads.

The hot path for chatty tasks, shared by the supervisor's batches and the lifecycle's final write.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as encode_json_string

from django.db import connection, transaction

from . import metrics
from .models import RunEvent

SMALL_BATCH = 16  # up to this many rows, one multi-row INSERT rather than COPY


class RawJSON(str):
    """A payload already encoded as JSON (encoded once, by the C encoder)."""


class LogLines:
    """Lines of one stream read at one moment: a `log` event each, {"stream", "line"}.

    A chatty run's hot path, so no Python object per line but its text: PostgreSQL's COPY text
    for the whole block is one join, made by C code."""

    __slots__ = ("created_at", "lines", "stream")

    def __init__(self, stream: str, lines: list[str], created_at):
        self.stream = stream
        self.lines = lines
        self.created_at = created_at

    def __len__(self) -> int:
        return len(self.lines)

    def rows(self) -> list[tuple[str, RawJSON, object]]:
        """The lines as (event_type, payload, created_at) rows."""
        head = f'{{"stream": "{self.stream}", "line": '
        return [
            ("log", RawJSON(head + encode_json_string(line) + "}"), self.created_at)
            for line in self.lines
        ]

    def copy_text(self, run_id: str, stamp: str) -> str:
        """The lines as COPY text rows. The JSON encoder leaves only ASCII without control
        characters, so of COPY's escapes only the backslash's is needed; run ids, stream names
        and timestamps hold none."""
        if not self.lines:
            return ""
        head = f'{run_id}\tlog\t{{"stream": "{self.stream}", "line": '
        tail = f"}}\t{stamp}\n"
        body = (tail + head).join(map(encode_json_string, self.lines))
        if "\\" in body:
            body = body.replace("\\", "\\\\")
        return head + body + tail


def event_rows(items: list) -> list[tuple[str, object, object]]:
    """`items` (rows and LogLines) as rows, in order."""
    rows = []
    for item in items:
        if isinstance(item, LogLines):
            rows += item.rows()
        else:
            rows.append(item)
    return rows


def event_count(items: list) -> int:
    """How many events `items` (rows and LogLines) are."""
    return sum(len(item) if isinstance(item, LogLines) else 1 for item in items)


def scrub(value):
    """`value` with what no database stores replaced: NUL, and lone surrogates, in any string."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def payload_json(payload) -> str:
    """An event's payload as the JSON text stored."""
    return payload if isinstance(payload, RawJSON) else json.dumps(payload, default=str)


def _copy_text(value: str) -> str:
    """Escape a value for COPY's text format (JSON already escapes tabs and newlines)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def insert_events(run_id: str, rows: list) -> None:
    """Append (event_type, payload, created_at) rows, and LogLines, to a run's stream, in order,
    fast.

    The hot path for chatty tasks: one COPY block on PostgreSQL, one executemany in one
    transaction on SQLite, instead of a model instance per line. Rows go in in order, so their
    event ids follow it.
    """
    table = connection.ops.quote_name(RunEvent._meta.db_table)
    last_at, stamp = None, ""
    count = event_count(rows)
    if connection.vendor != "postgresql" or count <= SMALL_BATCH:
        rows = event_rows(rows)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and count <= SMALL_BATCH:
            # A short run's few events: one INSERT is one round trip, COPY takes two.
            params = []
            for event_type, payload, created_at in rows:
                params += (run_id, event_type, payload_json(payload), created_at)
            values = ", ".join(["(%s, %s, %s::jsonb, %s)"] * len(rows))
            cursor.execute(
                f"INSERT INTO {table} (run_id, event_type, payload, created_at) VALUES {values}",
                params,
            )
        elif connection.vendor == "postgresql":
            lines = []
            for item in rows:
                if isinstance(item, LogLines):
                    lines.append(item.copy_text(run_id, item.created_at.isoformat()))
                    continue
                event_type, payload, created_at = item
                if created_at is not last_at:
                    last_at, stamp = created_at, created_at.isoformat()
                lines.append(
                    f"{run_id}\t{_copy_text(event_type)}\t{_copy_text(payload_json(payload))}\t{stamp}\n"
                )
            sql = f"COPY {table} (run_id, event_type, payload, created_at) FROM STDIN"
            with cursor.cursor.copy(sql) as copy:
                copy.write("".join(lines))
        else:
            adapt = connection.ops.adapt_datetimefield_value
            params = []
            for event_type, payload, created_at in rows:
                if created_at is not last_at:
                    last_at, stamp = created_at, adapt(created_at)
                params.append((run_id, event_type, payload_json(payload), stamp))
            with transaction.atomic():  # in autocommit, executemany would commit every row
                cursor.executemany(
                    f"INSERT INTO {table} (run_id, event_type, payload, created_at) VALUES (%s, %s, %s, %s)",
                    params,
                )
    metrics.events_written(count)
