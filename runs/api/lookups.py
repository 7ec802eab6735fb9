"""The API's two hottest reads, with their SQL compiled once per thread instead of per request.

`GET /api/runs/{id}` and the events poll each read one run by primary key. Building that query
through the ORM (filter, a 40-column select, converters) cost more CPU than the database took
to answer it; the statement never changes, so each thread compiles it once, through the ORM
(so the columns, quoting and value converters are Django's own), and then only executes it,
on a database cursor the thread keeps (`compiled.execute_kept`).
"""

from __future__ import annotations

import threading
import uuid
from types import SimpleNamespace

from django.db import connections, router

from ..compiled import convert_row, execute_kept
from ..models import Run, RunEvent
from .schemas import RUN_WIRE_FIELDS

_local = threading.local()
_PLACEHOLDER = "run_00000000000000000000000000000000"


def _alias() -> str:
    return router.db_for_read(Run)


def _run_statement(connection, fields: tuple[str, ...] | None):
    """(sql, attnames, converters) of `Run.objects.filter(pk=%s)` selecting `fields` (None:
    every column), for this connection."""
    cached = getattr(_local, "statements", None)
    if cached is None or cached[0] is not connection:
        cached = _local.statements = (connection, {})
    statement = cached[1].get(fields)
    if statement is not None:
        return statement
    query = Run.objects.filter(pk=_PLACEHOLDER).order_by()
    if fields is not None:
        query = query.values_list(*fields)
    compiler = query.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    if list(params) != [_PLACEHOLDER]:  # pragma: no cover - a Django change would land here
        raise RuntimeError(f"unexpected parameters compiling the run lookup: {params!r}")
    expressions = [col for col, _, _ in compiler.select]
    attnames = [expr.target.attname for expr in expressions]
    converters = list(compiler.get_converters(expressions).items())
    statement = cached[1][fields] = (sql, attnames, converters)
    return statement


def run_by_id(run_id: str) -> Run | None:
    """The run with this primary key, whatever its project (the caller checks), or None."""
    values = _run_values(run_id, None)
    return None if values is None else Run.from_db(_alias(), *values)


def run_fields_by_id(run_id: str) -> SimpleNamespace | None:
    """The columns the wire shows (`RUN_WIRE_FIELDS`) as plain attributes, for answers that
    only read them (`run_to_wire`): building a model instance of 40 fields, and reading and
    converting the worker's bookkeeping columns, is a good part of a GET's cost."""
    values = _run_values(run_id, RUN_WIRE_FIELDS)
    return None if values is None else SimpleNamespace(**dict(zip(*values, strict=True)))


def _run_values(run_id: str, fields: tuple[str, ...] | None) -> tuple[list[str], list] | None:
    alias = _alias()
    connection = connections[alias]
    sql, attnames, converters = _run_statement(connection, fields)
    row = execute_kept(connection, sql, [run_id], fetch_one=True)
    if row is None:
        return None
    return attnames, convert_row(row, converters, connection)


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
    row = execute_kept(connection, sql, [after, run_id], fetch_one=True)
    if row is None:
        return None
    project_id, news = row
    # PostgreSQL hands back a UUID, SQLite its 32 hex digits.
    return (project_id if isinstance(project_id, uuid.UUID) else uuid.UUID(project_id)), bool(news)
