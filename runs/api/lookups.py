"""The API's two hottest reads, with their SQL compiled once per thread instead of per request.

`GET /api/runs/{id}` and the events poll each read one run by primary key. Building that query
through the ORM (filter, a 33-column select, converters) cost more CPU than the database took
to answer it; the statement never changes, so each thread compiles it once, through the ORM
(so the columns, quoting and value converters are Django's own), and then only executes it.
"""

from __future__ import annotations

import threading
import uuid
from types import SimpleNamespace

from django.db import connections, router

from ..models import Run, RunEvent

_local = threading.local()
_PLACEHOLDER = "run_00000000000000000000000000000000"


def _alias() -> str:
    return router.db_for_read(Run)


def _run_statement(connection):
    """(sql, attnames, converters) of `Run.objects.filter(pk=%s)`, for this connection."""
    cached = getattr(_local, "run", None)
    if cached is not None and cached[0] is connection:
        return cached[1]
    query = Run.objects.filter(pk=_PLACEHOLDER).order_by().query
    compiler = query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    if list(params) != [_PLACEHOLDER]:  # pragma: no cover - a Django change would land here
        raise RuntimeError(f"unexpected parameters compiling the run lookup: {params!r}")
    expressions = [col for col, _, _ in compiler.select]
    attnames = [expr.target.attname for expr in expressions]
    converters = list(compiler.get_converters(expressions).items())
    statement = (sql, attnames, converters)
    _local.run = (connection, statement)
    return statement


def run_by_id(run_id: str) -> Run | None:
    """The run with this primary key, whatever its project (the caller checks), or None."""
    values = _run_values(run_id)
    return None if values is None else Run.from_db(_alias(), *values)


def run_fields_by_id(run_id: str) -> SimpleNamespace | None:
    """The same row as plain attributes, for answers that only read it (`run_to_wire`):
    building a model instance of 44 fields is a good part of a GET's cost."""
    values = _run_values(run_id)
    return None if values is None else SimpleNamespace(**dict(zip(*values, strict=True)))


def _run_values(run_id: str) -> tuple[list[str], list] | None:
    alias = _alias()
    connection = connections[alias]
    sql, attnames, converters = _run_statement(connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [run_id])
        row = cursor.fetchone()
    if row is None:
        return None
    row = list(row)
    for pos, (convs, expression) in converters:
        value = row[pos]
        for convert in convs:
            value = convert(value, expression, connection)
        row[pos] = value
    return attnames, row


def run_project_and_news(run_id: str, after: int) -> tuple[uuid.UUID, bool] | None:
    """(the run's project id, whether it has events after `after`), or None: no such run.

    One statement for a poll that mostly finds nothing new."""
    connection = connections[_alias()]
    qn = connection.ops.quote_name
    runs, events = Run._meta.db_table, RunEvent._meta.db_table
    sql = (
        f"SELECT r.{qn('project_id')}, EXISTS(SELECT 1 FROM {qn(events)} e "
        f"WHERE e.{qn('run_id')} = r.{qn('id')} AND e.{qn('id')} > %s) "
        f"FROM {qn(runs)} r WHERE r.{qn('id')} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [after, run_id])
        row = cursor.fetchone()
    if row is None:
        return None
    project_id, news = row
    # PostgreSQL hands back a UUID, SQLite its 32 hex digits.
    return (project_id if isinstance(project_id, uuid.UUID) else uuid.UUID(project_id)), bool(news)
