"""The only writer of a run's status (and of `cancel_requested_at`).

Every transition is one function: a conditional UPDATE whose row count is checked, plus its `run.*`
event, in one transaction. The losing side of a race (two claims, a cancel against a retry, the
sweeper against a late finish) gets False or None back, never an exception, and changes nothing.

    create          (new)                    -> pending
    claim           pending | due waiting    -> running       (a worker takes it)
    start           pending                  -> running       (orchestrated runs: no process)
    complete        running                  -> completed
    fail            running | pending | waiting -> failed
    retry_later     running                  -> waiting (retry), or cancelled if a cancel won
    cancel          pending | waiting        -> cancelled     (at once)
                    running                  -> running + cancel request (the worker acknowledges)
    acknowledge_cancel  running              -> cancelled
    settle_cancel_request  pending | waiting with a cancel request -> cancelled
    hand_back       running                  -> pending       (planned shutdown; no attempt spent)
    settle_lost     running (stale heartbeat) -> waiting (retry) | failed | cancelled
    wait            running                  -> waiting (approval, event, sleep, child)
    resume          waiting                  -> running

Hooks, registered from outside so that this module imports none of their owners:
- `on_terminal(fn, phase="in_transaction")`: inside the terminal transition's transaction (write
  an outbox row there); a failing hook is rolled back to its savepoint, the transition stays.
- `on_terminal(fn, phase="after_commit")`: after commit (advance a parent workflow, metrics).
- `on_release(fn)`: after commit, whenever a run stops holding a worker slot (it left `running`
  by any transition): frees a concurrency slot.
A hook that fails is logged and never undoes the transition. After-commit work lost in a crash is
found again by the sweeper.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from . import metrics
from .compiled import execute_kept
from .events import SMALL_BATCH, LogLines, insert_events, payload_json
from .models import Run, RunEvent, RunStatus
from .queue import enqueue

log = logging.getLogger(__name__)

EventRow = tuple[str, Any, datetime]  # (event_type, payload, created_at)
Hook = Callable[[Run], None]
Phase = Literal["in_transaction", "after_commit"]

IDLE = (RunStatus.PENDING, RunStatus.WAITING)


def error(message: Any, code: str, detail: Any = None) -> dict:
    """The one shape of `Run.error`: message always a string, code always a non-empty string."""
    return {"message": str(message), "code": str(code or "error"), "detail": detail}


# --- hooks ------------------------------------------------------------------------------------

_terminal_hooks: dict[str, list[Hook]] = {"in_transaction": [], "after_commit": []}
_release_hooks: list[Hook] = []
# For in-transaction hooks: a cheap read-only test that says whether the hook has anything to
# do for a run. Without one, every terminal transition pays the hook's savepoint (two round
# trips) even when it writes nothing.
_only_if: dict[Hook, Callable[[Run], bool]] = {}
# ... and the same test as SQL over the run's row: with every in-transaction hook's, a terminal
# transition whose hooks have nothing to do is one statement (`_move`).
_only_if_sql: dict[Hook, Callable[[], str]] = {}


def on_terminal(
    fn: Hook,
    phase: Phase = "after_commit",
    *,
    only_if: Callable[[Run], bool] | None = None,
    only_if_sql: Callable[[], str] | None = None,
) -> Hook:
    """Call `fn(run)` whenever a run reaches completed, failed or cancelled. An in-transaction
    hook may name `only_if(run)`: a read-only test, run first, outside the hook's savepoint; and
    `only_if_sql()`: that test as a SQL condition on the run's row (the runs table by name)."""
    if phase not in _terminal_hooks:
        raise ValueError(f"phase must be 'in_transaction' or 'after_commit', not {phase!r}")
    if (only_if is not None or only_if_sql is not None) and phase != "in_transaction":
        raise ValueError("only_if and only_if_sql are for in_transaction hooks")
    if only_if is not None:
        _only_if[fn] = only_if
    if only_if_sql is not None:
        _only_if_sql[fn] = only_if_sql
    if fn not in _terminal_hooks[phase]:
        _terminal_hooks[phase].append(fn)
    return fn


def on_release(fn: Hook) -> Hook:
    """Call `fn(run)` after commit whenever a run leaves `running` (its worker slot is free)."""
    if fn not in _release_hooks:
        _release_hooks.append(fn)
    return fn


def _call(fn: Hook, run: Run, what: str) -> None:
    try:
        fn(run)
    except Exception:
        log.exception("%s hook %s failed for %s", what, getattr(fn, "__qualname__", fn), run.pk)


def _run_hooks(run: Run, *, terminal: bool, released: bool, in_transaction: bool = True) -> None:
    """Inside the transition's transaction, right after it was written (`in_transaction=False`:
    after a transition written in one statement, which made sure those hooks had nothing to do)."""
    if terminal and in_transaction:
        for fn in _terminal_hooks["in_transaction"]:
            test = _only_if.get(fn)
            if test is not None and not test(run):
                continue
            try:
                with (
                    transaction.atomic()
                ):  # a savepoint: the hook's writes go, the transition stays
                    fn(run)
            except Exception:
                log.exception("terminal hook %s failed for %s", fn.__qualname__, run.pk)
    if (terminal and _terminal_hooks["after_commit"]) or (released and _release_hooks):

        def after_commit() -> None:
            if terminal:
                for fn in _terminal_hooks["after_commit"]:
                    _call(fn, run, "terminal")
            if released:
                for fn in _release_hooks:
                    _call(fn, run, "release")

        transaction.on_commit(after_commit)


# --- the one writer -----------------------------------------------------------------------------


def _move(
    run: Run,
    fields: dict[str, Any],
    *,
    guard: Q,
    event: tuple[str, Any] | None,
    events: Iterable[EventRow] = (),
    now: datetime,
    released: bool = False,
) -> bool:
    """One conditional UPDATE of `run` plus its events and hooks, in one transaction.

    `guard` is what the row must still look like; 0 rows means another writer got there first,
    and nothing is written. On success `run` carries the new values."""
    fields = {**fields, "updated_at": now}
    rows = list(events)
    if event is not None:
        rows.append((event[0], event[1], now))
    terminal = fields.get("status", run.status) in _TERMINAL
    written = _move_in_one_statement(run.pk, fields, guard, rows, terminal)
    if written:
        for name, value in fields.items():
            setattr(run, name, value)
        _run_hooks(run, terminal=terminal, released=released, in_transaction=False)
        return True
    if written is False:
        return False
    with transaction.atomic():
        if not _update(run.pk, fields, guard):
            return False
        if rows:
            insert_events(run.pk, rows)
        for name, value in fields.items():
            setattr(run, name, value)
        _run_hooks(run, terminal=terminal, released=released)
    return True


def _move_in_one_statement(
    run_id: str, fields: dict[str, Any], guard: Q, rows: list, terminal: bool
) -> bool | None:
    """PostgreSQL, outside a transaction: the UPDATE and its events in one statement, atomic by
    itself, so one round trip instead of five (BEGIN, UPDATE, INSERT, a hook's test, COMMIT).

    True: written. False: the guard did not match (another writer got there first). None: this
    transition needs the transaction: another database or a caller's transaction, rows that are
    not a few plain events, or an in-transaction hook that may have work (its SQL test is part of
    the UPDATE's condition, so such a run matches nothing here and the transaction writes it)."""
    if (
        connection.vendor != "postgresql"
        or connection.in_atomic_block
        or len(rows) > SMALL_BATCH
        or any(isinstance(row, LogLines) for row in rows)
    ):
        return None
    conditions = []
    if terminal:
        for hook in _terminal_hooks["in_transaction"]:
            if hook not in _only_if_sql:
                return None
            conditions.append(_only_if_sql[hook]())
    update = _update_sql(run_id, fields, guard)
    if update is None:
        return None
    sql, params = update
    quote = connection.ops.quote_name
    pk = quote(Run._meta.pk.column)
    for condition in conditions:
        sql += f" AND NOT ({condition})"
    sql = f"WITH u AS ({sql} RETURNING {pk})"
    if rows:
        values = ", ".join(["(%s::int, %s::text, %s::jsonb, %s::timestamptz)"] * len(rows))
        sql += (
            f", e AS (INSERT INTO {quote(RunEvent._meta.db_table)} "
            "(run_id, event_type, payload, created_at) "
            f"SELECT u.{pk}, v.t, v.p, v.c FROM u CROSS JOIN (VALUES {values}) AS v(n, t, p, c) "
            "ORDER BY v.n)"
        )
        for n, (event_type, payload, created_at) in enumerate(rows):
            params += [n, event_type, payload_json(payload), created_at]
    sql += " SELECT count(*) FROM u"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (written,) = cursor.fetchone()
    if written:
        metrics.events_written(len(rows))
        return True
    return None if conditions else False


_TERMINAL = {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED}


def _update(run_id: str, fields: dict[str, Any], guard: Q) -> int:
    """UPDATE the run's row with `fields` where it still matches `guard`; the row count.

    Every transition pays this, so it is written as one SQL statement directly: the ORM's
    queryset and compiler cost more CPU than the rest of a transition together. Guards are ANDs
    of `field=value` and `field__isnull=bool`; anything else goes through the ORM."""
    update = _update_sql(run_id, fields, guard)
    if update is None:
        return Run.objects.filter(guard, pk=run_id).update(**fields)
    with connection.cursor() as cursor:
        cursor.execute(*update)
        return cursor.rowcount


def _update_sql(run_id: str, fields: dict[str, Any], guard: Q) -> tuple[str, list] | None:
    """The UPDATE of `_update` as SQL and its values, or None if `guard` is not plain."""
    params: list[Any] = []
    quote = connection.ops.quote_name
    sets = []
    for name, value in fields.items():
        field = _FIELDS[name]
        sets.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    where = _guard_sql(guard, params)
    if where is None:
        return None
    params.append(run_id)
    sql = (
        f"UPDATE {quote(Run._meta.db_table)} SET {', '.join(sets)} "
        f"WHERE {where} AND {quote(Run._meta.pk.column)} = %s"
    )
    return sql, params


_FIELDS = {f.name: f for f in Run._meta.concrete_fields} | {
    f.attname: f for f in Run._meta.concrete_fields
}


def _guard_sql(guard: Q, params: list[Any]) -> str | None:
    """`guard` as SQL (its values appended to `params`), or None if it is not a plain AND of
    equalities and null tests on the run's own columns."""
    if guard.negated or guard.connector != Q.AND:
        return None
    parts = []
    for child in guard.children:
        if isinstance(child, Q):
            part = _guard_sql(child, params)
            if part is None:
                return None
            parts.append(f"({part})")
            continue
        name, value = child
        name, _, lookup = name.partition("__")
        field = _FIELDS.get(name)
        if field is None or lookup not in ("", "isnull", "exact"):
            return None
        column = connection.ops.quote_name(field.column)
        if lookup == "isnull":
            parts.append(f"{column} IS {'' if value else 'NOT '}NULL")
        elif value is None:
            parts.append(f"{column} IS NULL")
        else:
            parts.append(f"{column} = %s")
            params.append(field.get_db_prep_value(value, connection))
    return " AND ".join(parts) if parts else None


def _owned(worker: str | None) -> Q:
    guard = Q(status=RunStatus.RUNNING)
    return guard & Q(worker=worker) if worker is not None else guard


# --- create and claim ---------------------------------------------------------------------------


def create(run: Run, *, task_id: str | None = None, enqueue_run: bool = True) -> None:
    """Insert a new pending run and its `run.created` event; enqueue it once committed.

    Raises IntegrityError when a run with the same public_id won a race (the caller decides)."""
    run.status = RunStatus.PENDING
    payload = {"target": run.target, "trigger_kind": run.trigger_kind, "created_by": run.created_by}
    # The connection itself, not the `connection` proxy: each attribute read through the proxy
    # looks the connection up again (a context-local lookup), and building the INSERT's values
    # read it a few dozen times per create.
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql":
        # One statement inserts both rows: atomic by itself, so outside a transaction it needs
        # no BEGIN and COMMIT (one round trip instead of four); inside one, a savepoint keeps a
        # lost public_id race from breaking the caller's transaction.
        if db.in_atomic_block:
            with transaction.atomic():
                _insert_created(db, run, payload)
        else:
            _insert_created(db, run, payload)
        metrics.events_written(1)  # what the saves' post_save receivers count otherwise

        def after_commit() -> None:
            if enqueue_run:
                enqueue(run.pk, task_id=task_id)
            metrics.run_created(run)

        db.on_commit(after_commit)
        return
    with transaction.atomic():
        run.save(force_insert=True)
        RunEvent.objects.create(
            run=run, event_type="run.created", payload=payload, created_at=run.created_at
        )
        if enqueue_run:
            transaction.on_commit(lambda: enqueue(run.pk, task_id=task_id))


_CREATE_SQL: str | None = None


def _insert_created(db, run: Run, payload: dict) -> None:
    """PostgreSQL: INSERT the run and its `run.created` event in one statement."""
    global _CREATE_SQL
    fields = Run._meta.concrete_fields
    if _CREATE_SQL is None:
        quote = db.ops.quote_name
        pk = quote(Run._meta.pk.column)
        _CREATE_SQL = (
            f"WITH r AS (INSERT INTO {quote(Run._meta.db_table)} "
            f"({', '.join(quote(f.column) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {pk}) "
            f"INSERT INTO {quote(RunEvent._meta.db_table)} "
            "(run_id, event_type, payload, created_at) "
            f"SELECT {pk}, %s, %s::jsonb, %s FROM r"
        )
    params = _column_values(db, run)
    params += ["run.created", json.dumps(payload, default=str), run.created_at]
    execute_kept(db, _CREATE_SQL, params)
    run._state.adding = False  # as save() leaves it: stored
    run._state.db = db.alias


def _column_values(db, run: Run) -> list:
    """The run's value for each of its columns, as an INSERT stores them (what save() sends).

    A None is NULL whatever the field (tests/lifecycle/test_create.py checks each one), so only
    the values that are set go through their field's conversion: about half of a new run's."""
    return [
        None if (value := f.pre_save(run, True)) is None else f.get_db_prep_save(value, db)
        for f in Run._meta.concrete_fields
    ]


def create_many(runs: list[Run], *, task_ids: list[str | None]) -> None:
    """create() for many runs at once (a scheduler burst, a workflow's next steps): the runs and
    their `run.created` events stored together; each run is enqueued once that commits.

    `task_ids[i]` rides along with `runs[i]`, as create()'s task_id. The runs must carry their
    ids already (the model's default gives one). Raises IntegrityError as create() does, and
    then nothing of the batch is stored; inside a transaction on PostgreSQL that leaves the
    transaction to roll back, so a caller that carries on after one writes the batch in a
    savepoint of its own (the scheduler does; a workflow advance gives up and is redone)."""
    if len(task_ids) != len(runs):
        raise ValueError("create_many needs one task id per run")
    if not runs:
        return
    for run in runs:
        run.status = RunStatus.PENDING
    payloads = [
        {"target": run.target, "trigger_kind": run.trigger_kind, "created_by": run.created_by}
        for run in runs
    ]
    if connection.vendor == "postgresql":
        # One statement per chunk, both tables: no savepoint, one round trip for a workflow's
        # next step; several chunks (a large map) commit together.
        chunks = range(0, len(runs), _MANY_CHUNK)
        with transaction.atomic() if len(chunks) > 1 else nullcontext():
            for start in chunks:
                end = start + _MANY_CHUNK
                _insert_many(runs[start:end], payloads[start:end])
    else:
        with transaction.atomic():
            Run.objects.bulk_create(runs)
            RunEvent.objects.bulk_create(
                RunEvent(
                    run_id=run.pk,
                    event_type="run.created",
                    payload=payload,
                    created_at=run.created_at,
                )
                for run, payload in zip(runs, payloads, strict=True)
            )
    # Neither path sends post_save: count here what create()'s saves are counted by.
    metrics.events_written(len(runs))
    pairs = list(zip(runs, task_ids, strict=True))

    def after_commit() -> None:
        for run, task_id in pairs:
            enqueue(run.pk, task_id=task_id)
        for run, _ in pairs:
            metrics.run_created(run)

    transaction.on_commit(after_commit)


_MANY_CHUNK = 500  # rows per statement: 500 x (44 + 4) parameters, under PostgreSQL's 65,535


def _insert_many(runs: list[Run], payloads: list[dict]) -> None:
    """PostgreSQL: INSERT runs and their `run.created` events in one statement. The events'
    foreign keys are checked at the statement's end, when the runs are in."""
    db = connections[DEFAULT_DB_ALIAS]
    fields = Run._meta.concrete_fields
    quote = db.ops.quote_name
    row = f"({', '.join(['%s'] * len(fields))})"
    sql = (
        f"WITH r AS (INSERT INTO {quote(Run._meta.db_table)} "
        f"({', '.join(quote(f.column) for f in fields)}) VALUES {', '.join([row] * len(runs))}) "
        f"INSERT INTO {quote(RunEvent._meta.db_table)} (run_id, event_type, payload, created_at) "
        f"VALUES {', '.join(['(%s, %s, %s::jsonb, %s)'] * len(runs))}"
    )
    params = []
    for run in runs:
        params += _column_values(db, run)
    for run, payload in zip(runs, payloads, strict=True):
        params += [run.pk, "run.created", json.dumps(payload, default=str), run.created_at]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
    for run in runs:
        run._state.adding = False  # as save() leaves it: stored
        run._state.db = db.alias


_CLAIM_SQL: str | None = None


def claim(
    run_id: str,
    *,
    worker: str,
    now: datetime | None = None,
    target: str | None = None,
    concurrency_limit: int | None = None,
) -> Run | None:
    """pending (or due waiting) -> running for `worker`; None if it is not this worker's to run
    (finished, cancelled, claimed by another worker, not due yet, or no free concurrency slot).

    The `run.started` event is written by the worker with its first batch of output, which saves
    a round trip per run; `started_at` is set here."""
    now = now or timezone.now()
    if not concurrency_limit:
        return _claim_returning(run_id, worker, now)
    with transaction.atomic():
        status = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
        if status not in IDLE:
            return None
        pick = _pick_within_limit(run_id, status, target, concurrency_limit)
        if pick is None:
            return None  # stays where it is; a run of this target leaving `running` frees a slot
        return _claim_returning(
            pick, worker, now, status=RunStatus.PENDING if pick != run_id else status
        )


def _claim_returning(run_id: str, worker: str, now: datetime, *, status: str | None = None):
    """One round trip: a conditional UPDATE ... RETURNING. The row count is the arbiter: two
    workers, a cancel and the sweeper may race for the same run, and exactly one UPDATE matches.
    The ORM has no UPDATE ... RETURNING, hence raw SQL (PostgreSQL and SQLite >= 3.35); the row
    becomes a Run the way a queryset makes one (the backend's converters, then from_db), without
    a RawQuerySet's per-call column mapping (a third of a claim's CPU)."""
    global _CLAIM_SQL
    if _CLAIM_SQL is None:
        table = connection.ops.quote_name(Run._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(f.column) for f in _CLAIM_FIELDS)
        _CLAIM_SQL = (
            f"UPDATE {table} SET status = %s, attempt = attempt + 1, "
            "started_at = COALESCE(started_at, %s), worker = %s, heartbeat_at = %s, "
            "waiting_reason = NULL, resume_at = NULL, updated_at = %s "
            "WHERE id = %s AND cancel_requested_at IS NULL "
            "AND (status = %s OR (status = %s AND (resume_at IS NULL OR resume_at <= %s))) "
            f"RETURNING {columns}"
        )
    ts = connection.ops.adapt_datetimefield_value(now)
    due = connection.ops.adapt_datetimefield_value(now + timedelta(seconds=1))
    pending = status or RunStatus.PENDING
    waiting = status or RunStatus.WAITING
    params = [RunStatus.RUNNING, ts, worker, ts, ts, run_id, pending, waiting, due]
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for i, col, converters in _converters():
        for convert in converters:
            values[i] = convert(values[i], col, connection)
    return Run.from_db(connection.alias, _CLAIM_NAMES, values)


_CLAIM_FIELDS = Run._meta.concrete_fields
_CLAIM_NAMES = [f.attname for f in _CLAIM_FIELDS]
_CONVERTERS: dict[str, list] = {}


def _converters() -> list:
    """(index, column, converters) for the claimed row's fields that need converting on this
    database (JSON text, SQLite's datetimes, ...), as the ORM's compiler would apply them."""
    found = _CONVERTERS.get(connection.vendor)
    if found is None:
        found = []
        for i, field in enumerate(_CLAIM_FIELDS):
            col = field.get_col(Run._meta.db_table)
            converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if converters:
                found.append((i, col, converters))
        _CONVERTERS[connection.vendor] = found
    return found


def _pick_within_limit(run_id: str, status: str, target: str | None, limit: int) -> str | None:
    """Under the target's lock: the run to start now (the oldest pending one), or None if full."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [target])
    # (SQLite: the IMMEDIATE transaction already holds the database's write lock.)
    if Run.objects.filter(target=target, status=RunStatus.RUNNING).count() >= limit:
        return None
    if status == RunStatus.WAITING:
        return run_id
    return (
        Run.objects.filter(target=target, status=RunStatus.PENDING)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)
        .first()
    )


def start(run: Run) -> bool:
    """pending -> running for a run that no worker process executes (a workflow run)."""
    now = timezone.now()
    return _move(
        run,
        {"status": RunStatus.RUNNING, "started_at": run.started_at or now, "attempt": 1},
        guard=Q(status=RunStatus.PENDING, cancel_requested_at__isnull=True),
        event=("run.started", {"attempt": 1, "worker": None}),
        now=now,
    )


def heartbeat(run_id: str, worker: str) -> bool:
    """Prove `worker` still runs `run_id`; False if the run was taken away from it."""
    return bool(
        Run.objects.filter(pk=run_id, status=RunStatus.RUNNING, worker=worker).update(
            heartbeat_at=timezone.now()
        )
    )


# --- endings ------------------------------------------------------------------------------------


def complete(
    run: Run,
    output: Any,
    *,
    worker: str | None = None,
    fields: dict[str, Any] | None = None,
    events: Iterable[EventRow] = (),
) -> bool:
    """running -> completed, with the worker's last events written in the same transaction."""
    now = timezone.now()
    return _move(
        run,
        {
            **(fields or {}),
            "status": RunStatus.COMPLETED,
            "completed_at": now,
            "output": output,
            "error": None,
            "heartbeat_at": None,
        },
        guard=_owned(worker),
        event=("run.completed", {"output": output}),
        events=events,
        now=now,
        released=True,
    )


def fail(
    run: Run,
    err: dict,
    *,
    worker: str | None = None,
    fields: dict[str, Any] | None = None,
    events: Iterable[EventRow] = (),
) -> bool:
    """-> failed. A running run must still be `worker`'s; an idle one (its task vanished before
    it started) must still be in the status the caller saw."""
    now = timezone.now()
    idle = run.status in IDLE
    return _move(
        run,
        {
            **(fields or {}),
            "status": RunStatus.FAILED,
            "completed_at": now,
            "error": err,
            "heartbeat_at": None,
            "waiting_reason": None,
            "resume_at": None,
        },
        guard=Q(status=run.status) if idle else _owned(worker),
        event=("run.failed", {"error": err}),
        events=events,
        now=now,
        released=not idle,
    )


RetryOutcome = Literal["retrying", "cancelled", "lost"]


def retry_later(
    run: Run,
    err: dict,
    *,
    worker: str,
    delay: float,
    fields: dict[str, Any] | None = None,
    events: Iterable[EventRow] = (),
) -> RetryOutcome:
    """running -> waiting (retry) and a delayed message; a cancel that arrived meanwhile wins,
    since cancellations are never retried: then the run ends cancelled."""
    now = timezone.now()
    events = list(events)
    if _move(
        run,
        {**(fields or {}), **_retry_fields(run, err, delay, now), "heartbeat_at": None},
        guard=_owned(worker) & Q(cancel_requested_at__isnull=True),
        event=_retry_event(run, err, delay),
        events=events,
        now=now,
        released=True,
    ):
        transaction.on_commit(lambda: enqueue(run.pk, task_id=run.task_id, delay=delay))
        return "retrying"
    reason = Run.objects.filter(_owned(worker), pk=run.pk).values_list("cancel_reason", flat=True)
    if not reason.exists():
        return "lost"
    reason = f"{reason.first() or 'cancelled by request'} (before its retry)"
    done = acknowledge_cancel(run, reason, worker=worker, fields=fields, events=events)
    return "cancelled" if done else "lost"


def _retry_fields(run: Run, err: dict, delay: float, now: datetime) -> dict[str, Any]:
    resume_at = now + timedelta(seconds=delay)
    return {
        "status": RunStatus.WAITING,
        "waiting_reason": "retry",
        "resume_at": resume_at,
        "error": err,
        "metadata": {
            **(run.metadata or {}),
            "retry": {
                "failed_attempt": run.attempt,
                "resume_at": resume_at.isoformat(),
                "reason": err.get("message"),
            },
        },
    }


def _retry_event(run: Run, err: dict, delay: float) -> tuple[str, dict]:
    return (
        "run.retrying",
        {
            "attempt": run.attempt + 1,
            "failed_attempt": run.attempt,
            "delay_seconds": round(delay, 3),
            "error": err,
        },
    )


# --- cancel -------------------------------------------------------------------------------------


@dataclass
class CancelResult:
    accepted: bool  # cancelled now, or a cancel is under way
    run: Run


def cancel(run: Run, reason: str = "cancelled by user") -> CancelResult:
    """Stop a run: an idle run ends `cancelled` at once; a running one gets a cancel request that
    its worker acknowledges (`acknowledge_cancel`). Not accepted if the run had already ended."""
    reason = (reason or "cancelled by request")[:500]
    # Each step is conditional on the status it saw; if the run moved on in between (claimed,
    # retried, handed back), look again.
    for _ in range(10):
        status = Run.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        if status in IDLE:
            run.status = status
            if _cancel_idle(run, reason, request=True):
                break
        elif status == RunStatus.RUNNING:
            now = timezone.now()
            Run.objects.filter(
                pk=run.pk, status=RunStatus.RUNNING, cancel_requested_at__isnull=True
            ).update(cancel_requested_at=now, cancel_reason=reason, updated_at=now)
            if Run.objects.filter(
                pk=run.pk, status=RunStatus.RUNNING, cancel_requested_at__isnull=False
            ).exists():
                break
        else:  # ended (or gone)
            run.refresh_from_db()
            return CancelResult(False, run)
    run.refresh_from_db()
    return CancelResult(run.status == RunStatus.CANCELLED or run.cancelling, run)


def _cancel_idle(run: Run, reason: str, *, request: bool) -> bool:
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": RunStatus.CANCELLED,
        "completed_at": now,
        "waiting_reason": None,
        "resume_at": None,
        "error": error(reason, "cancelled"),
    }
    if run.status not in IDLE:
        return False
    guard = Q(status=run.status)
    if request:
        fields.update(cancel_requested_at=now, cancel_reason=reason)
    else:
        guard &= Q(cancel_requested_at__isnull=False)
    return _move(run, fields, guard=guard, event=("run.cancelled", {"reason": reason}), now=now)


def settle_cancel_request(run: Run) -> bool:
    """An idle run with a cancel request (one that raced a retry or a hand-back): workers no
    longer claim it, so end it here."""
    return _cancel_idle(run, run.cancel_reason or "cancelled by request", request=False)


def acknowledge_cancel(
    run: Run,
    reason: str,
    *,
    worker: str | None = None,
    fields: dict[str, Any] | None = None,
    events: Iterable[EventRow] = (),
    output: Any = None,
) -> bool:
    """running -> cancelled: the worker stopped the run it was asked to stop."""
    now = timezone.now()
    fields = {k: v for k, v in (fields or {}).items() if k not in _RETRY_ONLY}
    return _move(
        run,
        {
            **fields,
            "status": RunStatus.CANCELLED,
            "completed_at": now,
            "output": output,
            "error": error(reason, "cancelled"),
            "heartbeat_at": None,
        },
        guard=_owned(worker),
        event=("run.cancelled", {"reason": reason}),
        events=events,
        now=now,
        released=True,
    )


_RETRY_ONLY = ("waiting_reason", "resume_at", "metadata")


# --- workers going away ---------------------------------------------------------------------------


def hand_back(
    run: Run, worker: str, reason: str, *, events: Iterable[EventRow] = ()
) -> Literal["requeued", "cancelled", "lost"]:
    """running -> pending without spending an attempt (a planned shutdown), and re-enqueue. A run
    whose cancel was requested meanwhile ends `cancelled` instead."""
    now = timezone.now()
    events = list(events)
    if _move(
        run,
        {
            "status": RunStatus.PENDING,
            "attempt": run.attempt - 1,
            "worker": None,
            "heartbeat_at": None,
            "enqueued_at": now,
        },
        guard=_owned(worker) & Q(cancel_requested_at__isnull=True, attempt=run.attempt),
        event=("run.requeued", {"reason": reason}),
        events=events,
        now=now,
        released=True,
    ):
        transaction.on_commit(lambda: enqueue(run.pk, task_id=run.task_id))
        return "requeued"
    cancel_reason = (
        Run.objects.filter(_owned(worker), pk=run.pk)
        .values_list("cancel_reason", flat=True)
        .first()
    )
    reason = f"{cancel_reason or 'cancelled by request'} (its worker shut down)"
    if acknowledge_cancel(run, reason, worker=worker, events=events):
        return "cancelled"
    return "lost"


def settle_lost(run: Run, *, retry_delay: float) -> str | None:
    """A running run whose worker stopped heartbeating: cancelled if a cancel was requested,
    retried if attempts are left, else failed `worker_lost`. Guarded by the worker and the
    heartbeat the caller saw, so a late heartbeat (the worker was only slow) wins."""
    now = timezone.now()
    guard = Q(status=RunStatus.RUNNING, worker=run.worker, heartbeat_at=run.heartbeat_at)
    beat = run.heartbeat_at.isoformat() if run.heartbeat_at else "never"
    err = error(
        f"the worker running this run stopped responding ({run.worker})",
        "worker_lost",
        f"no heartbeat since {beat}",
    )
    if run.cancel_requested_at is not None:
        reason = f"{run.cancel_reason or 'cancelled by request'} (its worker was lost)"
        fields = {
            "status": RunStatus.CANCELLED,
            "completed_at": now,
            "error": error(reason, "cancelled"),
        }
        event = ("run.cancelled", {"reason": reason})
    elif run.attempt <= run.backoff_limit:
        fields = _retry_fields(run, err, retry_delay, now)
        event = _retry_event(run, err, retry_delay)
    else:
        fields = {"status": RunStatus.FAILED, "completed_at": now, "error": err}
        event = ("run.failed", {"error": err})
    fields["heartbeat_at"] = None
    if not _move(run, fields, guard=guard, event=event, now=now, released=True):
        return None
    if fields["status"] == RunStatus.WAITING:
        transaction.on_commit(lambda: enqueue(run.pk, task_id=run.task_id, delay=retry_delay))
    return fields["status"]


# --- waiting (workflows: approvals, events, timers, children) -------------------------------------


def wait(run: Run, reason: str, resume_at: datetime | None = None) -> bool:
    """running -> waiting for `reason` (approval, event, sleep, child), until `resume_at` if set."""
    now = timezone.now()
    return _move(
        run,
        {"status": RunStatus.WAITING, "waiting_reason": reason, "resume_at": resume_at},
        guard=Q(status=RunStatus.RUNNING, cancel_requested_at__isnull=True),
        event=(
            "run.waiting",
            {"reason": reason, "resume_at": resume_at.isoformat() if resume_at else None},
        ),
        now=now,
        released=run.worker is not None,
    )


def resume(run: Run) -> bool:
    """waiting -> running (what it waited for arrived)."""
    now = timezone.now()
    reason = run.waiting_reason
    return _move(
        run,
        {"status": RunStatus.RUNNING, "waiting_reason": None, "resume_at": None},
        guard=Q(status=RunStatus.WAITING),
        event=("run.resumed", {"reason": reason}),
        now=now,
    )
