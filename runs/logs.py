"""Log context and the JSON formatter (`STUDIO_LOG_FORMAT=json`).

A worker thread sets what it is working on (`log_context(run_id=..., project=..., worker=...)`);
every record logged meanwhile on that thread carries it, as do records given the same names in
`extra=`. The plain format stays as it was.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

CONTEXT_FIELDS = ("run_id", "project", "worker")
_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "studio_log_context", default=None
)


@contextmanager
def log_context(**fields) -> Iterator[None]:
    """Within the block, this thread's records carry `fields` (None values are left out)."""
    token = _context.set(
        {**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    )
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields) -> None:
    """Add fields to the current context (inside a `log_context` block)."""
    _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _context.get() or {}
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None) or context.get(name)
            if value is not None:
                entry[name] = str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
