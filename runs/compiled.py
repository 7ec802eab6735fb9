"""Hot reads whose SQL is compiled once per thread and connection, then only executed.

Compiling a queryset (filters, a 44-column select, ordering, converters) costs a workflow
advance more CPU than PostgreSQL takes to answer it, and these statements never change shape.
So each is compiled once, through the ORM (the columns, quoting, locking clause and value
converters are Django's own), with sentinel values where the parameters go; executing it swaps
the real values in and builds the instances the way a queryset does: the backend's converters,
then `Model.from_db`, and one level of `select_related` cached on the instance.

And the write side of the same idea: `update_row`, a plain UPDATE by primary key without the
ORM's compiler, and `pipelined()`, PostgreSQL's pipeline mode for a pass's few writes.

`execute_kept` runs a hot statement (the API's run lookups, a run's creation) on a cursor the
thread keeps instead of a new one each time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet


class Compiled:
    """`make(*params)` returns the queryset; `Compiled(make, arity).fetch(*values)` runs it.

    Parameters are strings (run and step ids, statuses): the sentinels standing in for them at
    compile time are strings, which a UUID or integer field would refuse."""

    def __init__(self, make: Callable[..., QuerySet], arity: int = 1):
        self._make = make
        self._sentinels = tuple(f"\x00compiled-parameter-{i}\x00" for i in range(arity))
        self._local = threading.local()

    def fetch(self, *values: Any) -> list[Model]:
        if len(values) != len(self._sentinels):
            raise TypeError(f"expected {len(self._sentinels)} parameters, got {len(values)}")
        connection = connections[self._alias()]
        sql, slots, constants, build = self._statement(connection)
        params = list(constants)
        for position, index in slots:
            params[position] = values[index]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [build(row, connection) for row in rows]

    def _alias(self) -> str:
        alias = getattr(self._local, "alias", None)
        if alias is None:
            alias = self._local.alias = self._make(*self._sentinels).db  # write db if locking
        return alias

    def _statement(self, connection):
        cached = getattr(self._local, "statement", None)
        if cached is not None and cached[0] is connection:
            return cached[1]
        queryset = self._make(*self._sentinels)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        params = list(params)
        slots = [
            (pos, self._sentinels.index(p)) for pos, p in enumerate(params) if p in self._sentinels
        ]
        if sorted(i for _, i in slots) != list(range(len(self._sentinels))):
            raise RuntimeError(f"a parameter did not reach the compiled SQL as given: {params!r}")
        statement = (sql, slots, params, _builder(compiler, connection.alias))
        self._local.statement = (connection, statement)
        return statement


def convert_row(row, converters: list, connection) -> list:
    """`row` as the ORM would hand its values over: each column through the converters that
    `compiler.get_converters()` gave for it (as a list of its items)."""
    values = list(row)
    for position, (convs, expression) in converters:
        value = values[position]
        for convert in convs:
            value = convert(value, expression, connection)
        values[position] = value
    return values


def _builder(compiler, alias: str):
    """row -> instance, as the compiler's klass_info says (the model, then its select_related)."""
    expressions = [col for col, _, _ in compiler.select]
    converters = list(compiler.get_converters(expressions).items())
    info = compiler.klass_info

    def part(klass_info):
        fields = klass_info["select_fields"]
        names = [expressions[i].target.attname for i in fields]
        return klass_info["model"], fields, names, names.index(klass_info["model"]._meta.pk.attname)

    model, fields, names, _ = part(info)
    related = []
    for sub in info.get("related_klass_infos", []):
        if sub.get("related_klass_infos"):
            raise RuntimeError("Compiled handles one level of select_related")
        related.append((*part(sub), sub["local_setter"], sub["remote_setter"]))

    def build(row, connection) -> Model:
        values = convert_row(row, converters, connection)
        obj = model.from_db(alias, names, [values[i] for i in fields])
        for rel_model, rel_fields, rel_names, pk, local_setter, remote_setter in related:
            rel_values = [values[i] for i in rel_fields]
            rel = (
                None if rel_values[pk] is None else rel_model.from_db(alias, rel_names, rel_values)
            )
            local_setter(obj, rel)
            if rel is not None:
                remote_setter(rel, obj)
        return obj

    return build


_kept = threading.local()


def execute_kept(connection, sql: str, params: list, *, fetch_one: bool = False) -> Any:
    """Run one statement on a database cursor this thread keeps for `connection`; with
    `fetch_one`, return its first row (None if it has none).

    `connection.cursor()` builds and wraps a new cursor for each statement, which cost a third
    of a run lookup. The kept one is the backend's own (`create_cursor()`), used the way Django
    uses it: the connection's health check first, a broken transaction refused, errors turned
    into Django's (IntegrityError; a lost database is still the API's 503, and the connection
    is dropped after the request).
    When queries are being logged (DEBUG, assertNumQueries) or wrapped (execute_wrapper), the
    statement takes Django's ordinary path, so that they see it."""
    if connection.queries_logged or connection.execute_wrappers:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() if fetch_one else None
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        kept = getattr(_kept, "cursor", None)
        if kept is None or kept[0] is not connection.connection:
            kept = _kept.cursor = (connection.connection, connection.create_cursor())
        cursor = kept[1]
        cursor.execute(sql, params)
        return cursor.fetchone() if fetch_one else None


def update_row(model: type[Model], pk: Any, values: dict[str, Any], using: str = "default") -> None:
    """UPDATE one row by primary key, setting `values` (field names), as one SQL statement.

    No row count is read back, so inside `pipelined()` it costs no round trip of its own. For
    writers that already hold the row (under a lock, or it is theirs alone)."""
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = model._meta
    sets, params = [], []
    for name, value in values.items():
        field = meta.get_field(name)
        sets.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    params.append(meta.pk.get_db_prep_value(pk, connection))
    sql = f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} WHERE {quote(meta.pk.column)} = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@contextmanager
def pipelined(using: str = "default", enabled: bool = True) -> Iterator[None]:
    """PostgreSQL: send the statements inside without waiting for each one's answer; they are
    all answered at the end, in one round trip. An error in any of them is raised at the end
    (and the transaction around it rolls back as usual). Only for statements whose results the
    code inside does not read (INSERTs and UPDATEs whose row counts do not matter; not COPY).
    Elsewhere, or not `enabled`, the statements run one by one as usual."""
    connection = connections[using]
    if not enabled or connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    # Errors arrive when the pipeline is answered, outside the cursor's own translation: make
    # them Django's (IntegrityError, ...) as every other statement's are.
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield
