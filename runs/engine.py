"""Executing one run attempt inside a Huey worker thread.

claim()      pending/waiting -> running with one conditional UPDATE; losing the race means no-op
Supervisor   forks the child (runs/child.py), turns its stdout/stderr/ctx events into RunEvent rows
             written in time- and size-bounded batches, watches for cancel, timeout and shutdown,
             heartbeats, and kills the child's whole process group when it has to
finish()     running -> completed / failed / cancelled / waiting (retry) with one conditional
             UPDATE, guarded by the worker's name so a run the sweeper took away is never touched
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import selectors
import signal
import socket
import threading
import time
from collections import Counter
from datetime import timedelta
from json.encoder import encode_basestring_ascii as encode_json_string
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from .definitions import TaskDefinition, discover
from .models import Run, RunEvent, RunStatus
from .zygote import ForkServer, RemoteChild

log = logging.getLogger(__name__)

_drain = threading.Event()
_drain_deadline = [float("inf")]
CHECK_INTERVAL = 0.5  # how often a supervisor looks for cancel requests and lost ownership
READ_CHUNK = 1 << 16
WRITER_THRESHOLD = 500  # a batch this big means a chatty run: store its events on a writer thread


def begin_drain(grace_seconds: float) -> None:
    """Stop claiming runs; runs still going after `grace_seconds` are handed back to the queue."""
    _drain_deadline[0] = min(_drain_deadline[0], time.monotonic() + grace_seconds)
    _drain.set()


_fork_server: ForkServer | None = None
_fork_server_lock = threading.Lock()


def fork_server() -> ForkServer:
    """This process's zygote for the configured tasks directory (started on first use)."""
    global _fork_server
    with _fork_server_lock:
        tasks_dir = Path(settings.STUDIO_TASKS_DIR)
        if _fork_server is None or _fork_server.tasks_dir != tasks_dir:
            if _fork_server is not None:
                _fork_server.stop()
            _fork_server = ForkServer(tasks_dir)
        return _fork_server


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


def execute(run_id: str, task_id: str | None = None) -> None:
    """Entry point of the Huey task: run one attempt of `run_id` if it is ours to run."""
    try:
        claimed = claim(run_id, task_id)
        if claimed is not None:
            Supervisor(*claimed).run()
    finally:
        close_old_connections()


# --- claiming ---------------------------------------------------------------------------------


def claim(run_id: str, task_id: str | None = None) -> tuple[Run, TaskDefinition, bool] | None:
    """Take `run_id` for this worker: (run, definition, first_start), or None if not ours."""
    if _drain.is_set():
        # A shutting-down worker can still pull a message (a thread blocked in BRPOP when the
        # drain began): pass it on to the queue rather than swallow it.
        from .service import enqueue

        enqueue(run_id, task_id=task_id)
        return None
    if task_id is None:  # messages from the sweeper and hand-backs carry only the run id
        target = Run.objects.filter(pk=run_id).values_list("target", flat=True).first()
        if target is None or not target.startswith("task:"):
            return None
        task_id = target.removeprefix("task:")
    definition = discover().get(task_id)
    if definition is None:
        run = Run.objects.filter(
            pk=run_id, status__in=[RunStatus.PENDING, RunStatus.WAITING]
        ).first()
        if run is not None:
            _fail_unstarted(
                run, f"task {task_id!r} no longer exists in the tasks directory", "target_not_found"
            )
        return None
    now = timezone.now()
    if definition.concurrency_limit:
        run = _claim_within_limit(run_id, definition, now)
    else:
        run = _claim_returning(run_id, now)
    if run is None:
        return None  # finished, cancelled, claimed by another worker, or not due yet
    return run, definition, run.attempt == 1 and run.started_at == now


_CLAIM_SQL = None


def _claim_returning(run_id: str, now, *, status: str | None = None) -> Run | None:
    """pending (or due waiting) -> running in one round trip: a conditional UPDATE ... RETURNING.

    The row count is the arbiter: two workers, a cancel and the sweeper may race for the same
    run, and exactly one UPDATE matches. The ORM has no UPDATE ... RETURNING, hence raw SQL
    (PostgreSQL and SQLite >= 3.35 both speak it).
    """
    global _CLAIM_SQL
    if _CLAIM_SQL is None:
        table = connection.ops.quote_name(Run._meta.db_table)
        _CLAIM_SQL = (
            f"UPDATE {table} SET status = %s, attempt = attempt + 1, started_at = COALESCE(started_at, %s), "
            "worker = %s, heartbeat_at = %s, waiting_reason = NULL, resume_at = NULL, updated_at = %s "
            "WHERE id = %s AND (status = %s OR (status = %s AND (resume_at IS NULL OR resume_at <= %s))) "
            "RETURNING *"
        )
    ts = connection.ops.adapt_datetimefield_value(now)
    due = connection.ops.adapt_datetimefield_value(now + timedelta(seconds=1))
    pending = status or RunStatus.PENDING
    waiting = status or RunStatus.WAITING
    params = [RunStatus.RUNNING, ts, worker_name(), ts, ts, run_id, pending, waiting, due]
    rows = list(Run.objects.raw(_CLAIM_SQL, params))
    return rows[0] if rows else None


def _claim_within_limit(run_id: str, definition: TaskDefinition, now) -> Run | None:
    with transaction.atomic():
        run = Run.objects.filter(pk=run_id).only("status").first()
        if run is None or run.status not in (RunStatus.PENDING, RunStatus.WAITING):
            return None
        pick = _pick_within_limit(run, definition)
        if pick is None:
            return None  # stays pending; a finishing run of this task enqueues the next one
        return _claim_returning(
            pick, now, status=RunStatus.PENDING if pick != run.pk else run.status
        )


def _pick_within_limit(run: Run, definition: TaskDefinition) -> str | None:
    """Under the task's lock: the run to start now (the oldest pending one), or None if full."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [definition.target])
    # (SQLite: the IMMEDIATE transaction already holds the database's write lock.)
    running = Run.objects.filter(target=definition.target, status=RunStatus.RUNNING).count()
    if running >= definition.concurrency_limit:
        return None
    if run.status == RunStatus.WAITING:
        return run.pk
    oldest = (
        Run.objects.filter(target=definition.target, status=RunStatus.PENDING)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)
        .first()
    )
    return oldest


def _fail_unstarted(run: Run, message: str, code: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        if Run.objects.filter(pk=run.pk, status=run.status).update(
            status=RunStatus.FAILED,
            completed_at=now,
            updated_at=now,
            error={"message": message, "code": code, "detail": None},
        ):
            RunEvent.objects.create(
                run_id=run.pk,
                event_type="run.failed",
                payload={"error": {"message": message, "code": code, "detail": None}},
            )


def enqueue_next_in_line(target: str, limit: int) -> None:
    """After a run of a concurrency-limited task ends, start the oldest runs waiting for a slot."""
    from .service import enqueue

    running = Run.objects.filter(target=target, status=RunStatus.RUNNING).count()
    free = max(0, limit - running)
    for run_id in (
        Run.objects.filter(target=target, status=RunStatus.PENDING)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:free]
    ):
        enqueue(run_id)


# --- supervising ------------------------------------------------------------------------------


class LogTail:
    """The run's `logs` text: the newest `limit` bytes, with a visible marker when cut."""

    def __init__(self, limit: int):
        self.limit = limit
        self.lines: list[str] = []
        self.size = 0
        self.dropped_bytes = 0

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.size += len(line) + 1
        if self.size > 2 * self.limit:  # trim in bulk now and then, not on every line
            self._trim()

    def _trim(self) -> None:
        cut = 0
        while self.size > self.limit and cut < len(self.lines) - 1:
            gone = len(self.lines[cut]) + 1
            self.size -= gone
            self.dropped_bytes += gone
            cut += 1
        del self.lines[:cut]

    def text(self) -> str:
        self._trim()
        body = "\n".join(self.lines) + ("\n" if self.lines else "")
        if self.dropped_bytes:
            marker = f"[... {self.dropped_bytes} earlier bytes of output truncated; the event log has every line ...]\n"
            return marker + body
        return body


class EventWriter(threading.Thread):
    """Writes a chatty run's event batches on its own connection, in order, so that reading
    the task's output and storing it overlap. A bounded queue makes a slow database slow the
    task down (its pipe fills) instead of growing memory."""

    def __init__(self, run_id: str):
        super().__init__(name=f"events-{run_id}", daemon=True)
        self.run_id = run_id
        self.batches: queue.Queue = queue.Queue(maxsize=8)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while (batch := self.batches.get()) is not None:
                if self.error is None:
                    try:
                        insert_events(self.run_id, batch)
                    except BaseException as exc:  # reported by close()
                        self.error = exc
        finally:
            connection.close()

    def close(self) -> None:
        self.batches.put(None)
        self.join()
        if self.error is not None:
            raise self.error


class RawJSON(str):
    """A payload already encoded as JSON (log lines: encoded once, by the C encoder)."""


class Supervisor:
    def __init__(self, run: Run, definition: TaskDefinition, first_start: bool = False):
        self.run_obj = run
        self.definition = definition
        self.name = run.worker
        self.max_events = settings.STUDIO_MAX_EVENTS_PER_RUN
        self.max_event_bytes = settings.STUDIO_MAX_EVENT_BYTES
        self.flush_seconds = settings.STUDIO_EVENT_FLUSH_SECONDS
        self.batch_size = settings.STUDIO_EVENT_BATCH_SIZE
        self.buffer: list[tuple[str, object, object]] = []  # (event_type, payload, created_at)
        self.buffer_since = 0.0
        # Events already stored count towards the cap: just run.created on a first start,
        # otherwise whatever earlier attempts left (counted when first needed).
        self.stored: int | None = 1 if first_start else None
        self.dropped: Counter[str] = Counter()
        self.logs = LogTail(settings.STUDIO_MAX_LOG_BYTES)
        self.partial: dict[str, bytes] = {"stdout": b"", "stderr": b"", "events": b""}
        self.result: dict | None = None
        self.kill_reason: str | None = None
        self.cancel_seen = False
        self.cancel_reason = ""
        self.cancel_kill_at = float("inf")
        self.writer: EventWriter | None = None
        self.spawn_error: str | None = None
        self.exit_code: int | None = None

    # The loop ------------------------------------------------------------------------------

    def run(self) -> None:
        run = self.run_obj
        started = time.monotonic()
        self.deadline = started + (run.timeout_seconds or settings.STUDIO_DEFAULT_TIMEOUT_SECONDS)
        self.next_check = started + CHECK_INTERVAL
        self.next_heartbeat = started + settings.STUDIO_HEARTBEAT_SECONDS
        # Written with the first batch (or the final write), saving a round trip per run.
        self._add(
            "run.started",
            {"attempt": run.attempt, "worker": self.name},
            run.started_at or timezone.now(),
        )
        try:
            child = fork_server().spawn(
                self.definition.id,
                input=run.input,
                config=run.config,
                project_id=str(run.project_id),
                run_id=run.pk,
                attempt=run.attempt,
            )
        except Exception as exc:  # no process was started: fail (or retry) the attempt
            log.exception("%s: could not start the task process", run.pk)
            self.spawn_error = f"could not start the task process: {exc}"
            self.duration_ms = 0
            self._finish(None)
            return
        self.child = child
        try:
            self._watch(child)
            exit_code = self._reap(child)
        finally:
            child.close()
        self.duration_ms = int((time.monotonic() - started) * 1000)
        self._finish(exit_code)

    def _watch(self, child: RemoteChild) -> None:
        sel = selectors.DefaultSelector()
        streams = {child.stdout_fd: "stdout", child.stderr_fd: "stderr", child.events_fd: "events"}
        for fd, name in streams.items():
            sel.register(fd, selectors.EVENT_READ, name)
        sel.register(child.status, selectors.EVENT_READ, "exit")  # the zygote reports the exit
        try:
            exited = False
            while not exited:
                timeout = max(0.0, self._next_wakeup() - time.monotonic())
                for key, _ in sel.select(timeout):
                    if key.data == "exit":
                        self.exit_code = child.read_exit_code()
                        exited = True
                    elif not self._read(key.fd, key.data):
                        sel.unregister(key.fd)
                self._tick()
            # The child is gone: take what is still in the pipes, without waiting for
            # descendants that may hold them open.
            for fd, name in streams.items():
                if fd in sel.get_map():
                    os.set_blocking(fd, False)
                    try:
                        while self._read(fd, name):
                            pass
                    except BlockingIOError:
                        pass
            for name in ("stdout", "stderr"):
                if self.partial[name]:
                    self._log(name, self.partial[name])
                    self.partial[name] = b""
        finally:
            sel.close()

    def _next_wakeup(self) -> float:
        wake = min(self.next_check, self.deadline, self.cancel_kill_at)
        if self.buffer:
            wake = min(wake, self.buffer_since + self.flush_seconds)
        if _drain.is_set():
            wake = min(wake, _drain_deadline[0])
        return wake

    def _read(self, fd: int, stream: str) -> bool:
        data = os.read(fd, READ_CHUNK)
        if not data:
            return False
        now = timezone.now()
        chunk = self.partial[stream] + data
        lines = chunk.split(b"\n")
        rest = lines.pop()
        if stream == "events":
            for line in lines:
                self._message(line, now)
        else:
            for line in lines:
                self._log(stream, line, now)
            if len(rest) > self.max_event_bytes:  # a line with no end in sight: store it in parts
                self._log(stream, rest, now)
                rest = b""
        self.partial[stream] = rest
        return True

    def _tick(self) -> None:
        now = time.monotonic()
        if self.buffer and (
            len(self.buffer) >= self.batch_size or now >= self.buffer_since + self.flush_seconds
        ):
            self._flush()
        if now >= self.next_check:
            self.next_check = now + CHECK_INTERVAL
            self._check_run(now)
        if self.kill_reason is None:
            if now >= self.deadline:
                self._kill("timeout")
            elif now >= self.cancel_kill_at:
                self._kill("cancel")
            elif _drain.is_set() and now >= _drain_deadline[0]:
                self._kill("shutdown")

    def _check_run(self, now: float) -> None:
        """Look for a cancel request; heartbeat; notice if the run was taken away from us."""
        row = (
            Run.objects.filter(pk=self.run_obj.pk)
            .values_list("status", "worker", "cancel_requested_at", "cancel_reason")
            .first()
        )
        if row is None or row[0] != RunStatus.RUNNING or row[1] != self.name:
            self._kill("lost")
            return
        if row[2] is not None and not self.cancel_seen:
            self.cancel_seen = True
            self.cancel_reason = row[3] or "cancelled by request"
            grace = settings.STUDIO_CANCEL_GRACE_SECONDS
            self.cancel_kill_at = now + grace
            try:
                os.write(self.child.control_fd, b"c")
            except OSError:
                pass
            self._add("run.cancelling", {"grace_seconds": grace}, timezone.now())
        if now >= self.next_heartbeat:
            self.next_heartbeat = now + settings.STUDIO_HEARTBEAT_SECONDS
            beat = timezone.now()
            if not Run.objects.filter(
                pk=self.run_obj.pk, status=RunStatus.RUNNING, worker=self.name
            ).update(heartbeat_at=beat):
                self._kill("lost")

    def _kill(self, reason: str) -> None:
        self.kill_reason = reason
        try:
            os.killpg(self.child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _reap(self, child: RemoteChild) -> int | None:
        try:
            os.killpg(child.pid, signal.SIGKILL)  # whatever the task left behind goes with it
        except (ProcessLookupError, PermissionError):
            pass
        return self.exit_code

    # Events ----------------------------------------------------------------------------------

    def _message(self, raw: bytes, now) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            self._log(
                "stderr", b"[studio] unreadable event from the task process: " + raw[:200], now
            )
            return
        if message.get("t") == "result":
            self.result = message
        elif message.get("t") == "event":
            self._add(str(message.get("type")), message.get("payload"), now)

    def _log(self, stream: str, raw: bytes, now=None) -> None:
        line = raw.decode("utf-8", "replace").removesuffix("\r")
        if len(line) > self.max_event_bytes:
            line = line[: self.max_event_bytes] + f" [... line truncated, {len(raw)} bytes]"
        self.logs.add(line)
        payload = RawJSON(f'{{"stream": "{stream}", "line": {encode_json_string(line)}}}')
        self._add("log", payload, now or timezone.now())

    def _add(self, event_type: str, payload, now) -> None:
        if self.stored is None:
            self.stored = RunEvent.objects.filter(run_id=self.run_obj.pk).count()
        # Two places stay free for events.dropped and the terminal event.
        if self.stored + len(self.buffer) >= self.max_events - 2:
            self.dropped[event_type] += 1
            return
        if not isinstance(payload, RawJSON):
            encoded = json.dumps(payload, default=str)
            if len(encoded) > self.max_event_bytes:
                payload = {
                    "truncated": True,
                    "original_bytes": len(encoded),
                    "preview": encoded[:1000],
                }
        if not self.buffer:
            self.buffer_since = time.monotonic()
        self.buffer.append((event_type, payload, now))

    def _flush(self) -> None:
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        if self.writer is None and len(batch) >= WRITER_THRESHOLD:
            self.writer = EventWriter(self.run_obj.pk)
            self.writer.start()
        if self.writer is not None:
            self.writer.batches.put(batch)
        else:
            insert_events(self.run_obj.pk, batch)
        self.stored += len(batch)

    def _drain_writer(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()

    # The end ---------------------------------------------------------------------------------

    def _finish(self, exit_code: int) -> None:
        run = self.run_obj
        if self.writer is not None and self.buffer:
            self._flush()  # keep order: everything the writer has goes in before the final write
        self._drain_writer()
        if self.kill_reason == "lost":
            log.warning(
                "%s was taken away from this worker (sweeper or operator); leaving it alone", run.pk
            )
            return
        if self.kill_reason == "shutdown":
            self._flush()
            hand_back(run, self.name, reason="the worker shut down before the run finished")
            return
        now = timezone.now()
        result = self.result or {}
        fields = {
            "logs": self.logs.text(),
            "exit_code": exit_code,
            "duration_ms": self.duration_ms,
            "heartbeat_at": None,
            "updated_at": now,
        }
        if self.cancel_seen:
            reason = self.cancel_reason
            if self.kill_reason == "cancel":
                reason += (
                    f"; stopped after the {settings.STUDIO_CANCEL_GRACE_SECONDS:g}s grace period"
                )
            fields.update(
                status=RunStatus.CANCELLED,
                completed_at=now,
                output=result.get("output"),
                error={"message": reason, "code": "cancelled", "detail": None},
            )
            terminal = ("run.cancelled", {"reason": reason})
        elif self.kill_reason is None and result.get("ok"):
            fields.update(
                status=RunStatus.COMPLETED,
                completed_at=now,
                output=result.get("output"),
                error=None,
            )
            terminal = ("run.completed", {"output": result.get("output")})
        else:
            error = self._failure(result, exit_code)
            if run.attempt <= run.backoff_limit:
                self._retry(fields, error)
                return
            fields.update(
                status=RunStatus.FAILED, completed_at=now, error=error, output=result.get("output")
            )
            terminal = ("run.failed", {"error": error})
        self._write_end(fields, [terminal])
        if self.definition.concurrency_limit:
            enqueue_next_in_line(self.definition.target, self.definition.concurrency_limit)

    def _failure(self, result: dict, exit_code: int | None) -> dict:
        if self.spawn_error:
            return {"message": self.spawn_error, "code": "spawn_failed", "detail": None}
        if exit_code is None:
            return {
                "message": "the task process was lost with its fork server (killed from outside Studio?)",
                "code": "process_died",
                "detail": None,
            }
        if self.kill_reason == "timeout":
            limit = self.run_obj.timeout_seconds
            return {
                "message": f"the run exceeded its timeout of {limit}s and was stopped",
                "code": "timeout",
                "detail": None,
            }
        if result.get("error"):
            return result["error"]
        if exit_code > 128:
            sig = (
                signal.Signals(exit_code - 128).name
                if exit_code - 128 in signal.Signals._value2member_map_
                else exit_code - 128
            )
            message = f"the task process was killed by {sig}"
            if exit_code - 128 == signal.SIGKILL:
                message += " (out of memory, or killed from outside Studio)"
        else:
            message = f"the task process exited with code {exit_code} before returning"
        return {"message": message, "code": "process_died", "detail": None}

    def _retry(self, fields: dict, error: dict) -> None:
        run = self.run_obj
        delay = backoff_delay(run.attempt)
        resume_at = timezone.now() + timedelta(seconds=delay)
        fields.update(
            status=RunStatus.WAITING,
            waiting_reason="retry",
            resume_at=resume_at,
            error=error,
            metadata={
                **(run.metadata or {}),
                "retry": {
                    "failed_attempt": run.attempt,
                    "resume_at": resume_at.isoformat(),
                    "reason": error.get("message"),
                },
            },
        )
        event = (
            "run.retrying",
            {"attempt": run.attempt + 1, "delay_seconds": round(delay, 3), "error": error},
        )
        if self._write_end(fields, [event]):
            from .service import enqueue

            enqueue(run.pk, delay=delay)

    def _write_end(self, fields: dict, events: list[tuple[str, dict]]) -> bool:
        """The final write: remaining events, the run's new state and its terminal event(s), in
        one transaction guarded by this worker's ownership of the run."""
        run = self.run_obj
        now = timezone.now()
        if self.dropped:
            dropped = {
                "dropped": sum(self.dropped.values()),
                "by_type": dict(self.dropped),
                "limit": self.max_events,
            }
            events = [("events.dropped", dropped), *events]
        batch, self.buffer = self.buffer, []
        batch += [(t, p, now) for t, p in events]
        with transaction.atomic():
            updated = Run.objects.filter(
                pk=run.pk, status=RunStatus.RUNNING, worker=self.name
            ).update(**fields)
            if not updated:
                log.warning("%s changed hands before it could be finished; result dropped", run.pk)
                return False
            insert_events(run.pk, batch)
        return True


def _to_json(payload) -> str:
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


def insert_events(run_id: str, rows: list[tuple[str, object, object]]) -> None:
    """Append (event_type, payload, created_at) rows to a run's stream, in order, fast.

    The hot path for chatty tasks: one COPY block on PostgreSQL, one executemany on SQLite,
    instead of a model instance per line. Rows go in in order, so their event ids follow it.
    """
    table = connection.ops.quote_name(RunEvent._meta.db_table)
    last_at, stamp = None, ""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            lines = []
            for event_type, payload, created_at in rows:
                if created_at is not last_at:
                    last_at, stamp = created_at, created_at.isoformat()
                lines.append(
                    f"{run_id}\t{_copy_text(event_type)}\t{_copy_text(_to_json(payload))}\t{stamp}\n"
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
                params.append((run_id, event_type, _to_json(payload), stamp))
            with transaction.atomic():  # in autocommit, executemany would commit every row
                cursor.executemany(
                    f"INSERT INTO {table} (run_id, event_type, payload, created_at) VALUES (%s, %s, %s, %s)",
                    params,
                )


def backoff_delay(failed_attempt: int) -> float:
    """Exponential backoff with equal jitter: half the step is fixed, half is random."""
    step = min(
        settings.STUDIO_RETRY_MAX_SECONDS,
        settings.STUDIO_RETRY_BASE_SECONDS * 2 ** (failed_attempt - 1),
    )
    return step / 2 + random.uniform(0, step / 2)


def hand_back(run: Run, worker: str, *, reason: str) -> bool:
    """Return a running run to the queue without spending an attempt (planned shutdown)."""
    from .service import enqueue

    now = timezone.now()
    with transaction.atomic():
        if not Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, worker=worker).update(
            status=RunStatus.PENDING,
            attempt=F("attempt") - 1,
            worker=None,
            heartbeat_at=None,
            enqueued_at=now,
            updated_at=now,
        ):
            return False
        RunEvent.objects.create(
            run_id=run.pk, event_type="run.requeued", payload={"reason": reason}
        )
    enqueue(run.pk)
    return True
