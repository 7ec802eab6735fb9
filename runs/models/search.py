"""Text search over runs: id, name, target, input and error message.

On PostgreSQL one expression covers all five fields, and migration 0003_search puts a trigram
index (pg_trgm) on exactly that expression, so `LIKE '%text%'` is an index scan rather than a
pass over every run of the project. The WHERE clause below must stay identical to the indexed
expression, or PostgreSQL will not use the index. Elsewhere (SQLite) it is plain icontains.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Q, QuerySet

# Keep in step with runs/migrations/0005_search.py.
PG_SEARCH_EXPRESSION = (
    'UPPER("runs_run"."id" || \' \' || "runs_run"."name" || \' \' || "runs_run"."target"'
    " || ' ' || \"runs_run\".\"input\"::text || ' ' || COALESCE(\"runs_run\".\"error\" ->> 'message', ''))"
)


def _like_pattern(text: str) -> str:
    escaped = text.upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matching(qs: QuerySet, text: str) -> QuerySet:
    """Runs whose id, name, target, input or error message contains `text` (any case)."""
    if connection.vendor == "postgresql":
        return qs.extra(where=[f"{PG_SEARCH_EXPRESSION} LIKE %s"], params=[_like_pattern(text)])  # noqa: S610 - fixed SQL, the text is a parameter
    return qs.filter(
        Q(pk__icontains=text)
        | Q(name__icontains=text)
        | Q(target__icontains=text)
        | Q(input__icontains=text)
        | Q(error__message__icontains=text)
    )
