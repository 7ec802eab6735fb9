"""Supervising one run attempt: the worker thread's side of a running child process.

The Supervisor reads the child's stdout, stderr and event pipes, turns them into RunEvent rows in
time- and size-bounded batches, looks for cancel requests, heartbeats, enforces the timeout and
the shutdown deadline, and kills the child's whole process group when it has to. It ends with one
lifecycle transition guarded by the worker's name, so a run the sweeper took away is never touched.

Whatever goes wrong here (a database outage, a task writing garbage into its pipes), the child is
killed before the Supervisor lets go of it: an unsupervised process could run beside a retry.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import selectors
import signal
import threading
import time
from collections import Counter

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from .. import lifecycle, sandboxing
from ..definitions import TaskDefinition
from ..events import LogLines, RawJSON, event_rows, insert_events, scrub
from ..models import Run, RunEvent, RunStatus
from ..process.forkserver import RemoteChild
from ..process.runner import output_error
from ..process.sandbox import LIMIT_CODES, LIMIT_SIGNALS, limit_error
from . import claim as engine
from . import registry, reuse

log = logging.getLogger(__name__)

CHECK_INTERVAL = 0.5  # how often to look for cancel requests and lost ownership
READ_CHUNK = 1 << 16
WRITER_THRESHOLD = 500  # a batch this big means a chatty run: store its events on a writer thread
WRITER_LANES = 2  # PostgreSQL: writer threads (connections) taking alternate batches
EXIT_REPORT_WAIT = 10.0  # after a kill, how long to wait for the fork server's exit report
MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # one ctx event or the result, as JSON
RESERVED_EVENT_TYPES = ("log", "events.dropped")


class LogTail:
    """The run's `logs` text: the newest `limit` bytes, with a visible marker when cut."""

    def __init__(self, limit: int):
        self.limit = limit
        self.lines: list[str] = []
        self.size = 0
        self.dropped_bytes = 0

    def extend(self, lines: list[str]) -> None:
        self.lines += lines
        self.size += sum(map(len, lines)) + len(lines)
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


class _Stopped(Exception):
    """An earlier batch failed, or the writer was abandoned: this batch must not commit."""


class EventWriter:
    """Stores a chatty run's event batches on writer threads, in order, so that reading the
    task's output and storing it overlap. Bounded queues make a slow database slow the task
    down (its pipe fills) instead of growing memory.

    On PostgreSQL two threads, each with its own connection, take alternate batches. About half
    of what the database spends on a batch comes after its COPY, at COMMIT, where the deferred
    foreign key on run_id is checked row by row; so one batch commits while the next one is
    copied, on another core. The COPYs still go in one after another, and so do the COMMITs:
    event ids follow the order of the lines, and a reader polling for events after the last id it
    saw never finds an earlier line appear later. Nothing commits after a batch that failed."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.error: BaseException | None = None
        self.abandoned = False
        self.sent = 0  # batches handed over
        self.copied = 0  # batches whose rows have their ids (COPY done)
        self.committed = 0
        self.turn = threading.Condition()
        lanes = WRITER_LANES if connection.vendor == "postgresql" else 1
        self.queues: list[queue.Queue] = [queue.Queue(maxsize=8 // lanes) for _ in range(lanes)]
        self.threads = [
            threading.Thread(target=self._write, args=(q,), name=f"events-{run_id}", daemon=True)
            for q in self.queues
        ]
        for thread in self.threads:
            thread.start()

    def put(self, batch: list) -> None:
        self.queues[self.sent % len(self.queues)].put((self.sent, batch))
        self.sent += 1

    def _write(self, batches: queue.Queue) -> None:
        try:
            while (item := batches.get()) is not None:
                if self.error is None and not self.abandoned:
                    try:
                        self._store(*item)
                    except _Stopped:
                        pass
                    except BaseException as exc:  # reported by close() and seen by the Supervisor
                        with self.turn:
                            self.error = self.error or exc
                            self.turn.notify_all()
        finally:
            connection.close()

    def _store(self, index: int, batch: list) -> None:
        self._wait_for("copied", index)
        with transaction.atomic():
            insert_events(self.run_id, batch)
            with self.turn:
                self.copied += 1
                self.turn.notify_all()
            self._wait_for("committed", index)
        with self.turn:
            self.committed += 1
            self.turn.notify_all()

    def _wait_for(self, counter: str, index: int) -> None:
        """Wait until the batches before `index` are that far; raise _Stopped if they never
        will be (one failed, or the writer was abandoned): leaving the transaction rolls back."""
        with self.turn:
            self.turn.wait_for(
                lambda: getattr(self, counter) == index or self.error or self.abandoned
            )
            if self.error is not None or self.abandoned:
                raise _Stopped

    def close(self, *, abandon: bool = False) -> None:
        """Wait until every batch is written (or, abandoning, dropped); raise what failed."""
        with self.turn:
            self.abandoned = self.abandoned or abandon
            self.turn.notify_all()
        for batches in self.queues:
            batches.put(None)
        for thread in self.threads:
            thread.join()
        if self.error is not None and not self.abandoned:
            raise self.error


class Supervisor:
    def __init__(self, run: Run, definition: TaskDefinition, first_start: bool = False):
        self.run_obj = run
        self.definition = definition
        self.name = run.worker
        self.max_events = settings.STUDIO_MAX_EVENTS_PER_RUN
        self.max_event_bytes = settings.STUDIO_MAX_EVENT_BYTES
        self.flush_seconds = settings.STUDIO_EVENT_FLUSH_SECONDS
        self.batch_size = settings.STUDIO_EVENT_BATCH_SIZE
        # (event_type, payload, created_at) rows, and LogLines; `buffered` counts their events.
        self.buffer: list = []
        self.buffered = 0
        self.buffer_since = 0.0
        # Events already stored count towards the cap: just run.created on a first start,
        # otherwise whatever earlier attempts left (counted when first needed).
        self.stored: int | None = 1 if first_start else None
        self.dropped: Counter[str] = Counter()
        self.logs = LogTail(settings.STUDIO_MAX_LOG_BYTES)
        self.partial = {"stdout": bytearray(), "stderr": bytearray(), "events": bytearray()}
        self.skipping_message = False  # inside an over-long event line, dropping it
        self.oversized_messages = 0
        self.result: dict | None = None
        self.kill_reason: str | None = None
        self.cancel_seen = False
        self.cancel_reason = ""
        self.cancel_kill_at = float("inf")
        self.writer: EventWriter | None = None
        self.spawn_error: str | None = None
        self.internal_error: str | None = None
        self.exit_code: int | None = None
        self.child: RemoteChild | reuse.ReusedChild | None = None

    # The loop ----------------------------------------------------------------------------------

    def run(self) -> None:
        run = self.run_obj
        started = time.monotonic()
        self.deadline = started + (run.timeout_seconds or settings.STUDIO_DEFAULT_TIMEOUT_SECONDS)
        self.next_check = started + CHECK_INTERVAL
        self.next_heartbeat = started + settings.STUDIO_HEARTBEAT_SECONDS
        self.last_contact = started  # the last time the database answered us
        # Written with the first batch (or the final write), saving a round trip per run.
        self._add(
            "run.started",
            {"attempt": run.attempt, "worker": self.name},
            run.started_at or timezone.now(),
        )
        try:
            try:
                request = {
                    "path": self.definition.path,
                    "limits": self.definition.limits,
                    "network": self.definition.network,
                    "input": run.input,
                    "config": run.config,
                    "project_id": str(run.project_id),
                    "run_id": run.pk,
                    "attempt": run.attempt,
                }
                if self.definition.reuse_process:
                    self.child = reuse.acquire(self.definition, request)
                else:
                    self.child = engine.fork_server().spawn(self.definition.id, **request)
            except Exception as exc:  # no process was started: fail (or retry) the attempt
                log.exception("%s: could not start the task process", run.pk)
                self.spawn_error = f"could not start the task process: {exc}"
            else:
                try:
                    self._watch(self.child)
                except Exception as exc:  # never leave the task running without its supervisor
                    log.exception("%s: supervising the run failed; stopping its process", run.pk)
                    self.internal_error = f"{type(exc).__name__}: {exc}"
                    self._kill("internal")
                finally:
                    self.child.settle()  # a no-op if the run settled when its process ended
                    self.child.close()
            self.duration_ms = int((time.monotonic() - started) * 1000)
            self._finish()
        except Exception:
            # The database is unreachable even for the final write: the process is gone, so the
            # sweeper settles the run (worker_lost, or a retry) once its heartbeat is stale.
            log.exception(
                "%s: could not record the end of the run; the sweeper will settle it", run.pk
            )
            if self.writer is not None:
                self.writer.close(abandon=True)

    def _watch(self, child: RemoteChild | reuse.ReusedChild) -> None:
        sel = selectors.DefaultSelector()
        streams = {"stdout": child.stdout_fd, "stderr": child.stderr_fd, "events": child.events_fd}
        for name, fd in streams.items():
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ, name)
        sel.register(child.exit_source(), selectors.EVENT_READ, "exit")
        open_streams = set(streams)
        exit_report_by = float("inf")
        try:
            while True:
                timeout = max(0.0, min(self._next_wakeup(), exit_report_by) - time.monotonic())
                ready = {key.data for key, _ in sel.select(timeout)}
                if "events" in ready:
                    # A task flushes its output before each ctx event: store that output first.
                    ready |= {"stdout", "stderr"} & open_streams
                for name in ("stdout", "stderr", "events"):
                    if (
                        name in ready
                        and name in open_streams
                        and not self._read(streams[name], name, drain=True)
                    ):
                        sel.unregister(streams[name])
                        open_streams.discard(name)
                if "exit" in ready:
                    self.exit_code = child.read_exit_code()
                    break
                self._tick()
                if self.kill_reason is not None and exit_report_by == float("inf"):
                    exit_report_by = time.monotonic() + EXIT_REPORT_WAIT
                if time.monotonic() > exit_report_by:
                    log.error(
                        "%s: no exit report %ss after the kill; giving up on it",
                        self.run_obj.pk,
                        EXIT_REPORT_WAIT,
                    )
                    break
            # The child is gone. Kill what it left behind first, so nothing keeps writing, then
            # take what is still in the pipes. A reused process goes back to its pool instead,
            # unless the run was cancelled: whatever the task did about it, the process is
            # replaced.
            if self.cancel_seen:
                child.kill()
            child.settle()
            for name in list(open_streams):
                self._read(streams[name], name, drain=True)
            for name in ("stdout", "stderr"):
                if self.partial[name]:
                    self._log(name, bytes(self.partial[name]))
                    self.partial[name].clear()
        finally:
            sel.close()

    def _next_wakeup(self) -> float:
        wake = min(self.next_check, self.deadline, self.cancel_kill_at)
        if self.buffer:
            wake = min(wake, self.buffer_since + self.flush_seconds)
        if engine.draining():
            wake = min(wake, engine.drain_deadline())
        return wake

    def _read(self, fd: int, stream: str, *, drain: bool = False) -> bool:
        """Read what the pipe has (all of it with drain, up to a bound); False at end of file."""
        for _ in range(64 if drain else 1):
            try:
                data = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                return True
            if not data:
                return False
            self._take(stream, data)
        return True

    def _take(self, stream: str, data: bytes) -> None:
        now = timezone.now()
        buf = self.partial[stream]
        end = data.rfind(b"\n")
        if end < 0:  # no complete line yet: keep it, within bounds
            buf += data
            if stream == "events":
                if len(buf) > MAX_MESSAGE_BYTES:
                    buf.clear()
                    self.skipping_message = True
            elif len(buf) > self.max_event_bytes:  # a line with no end in sight: store it in parts
                self._log(stream, bytes(buf), now)
                buf.clear()
            return
        complete = bytes(buf) + data[:end] if buf else data[:end]
        buf.clear()
        buf += data[end + 1 :]
        if stream == "events":
            lines = complete.split(b"\n")
            if self.skipping_message:  # the first line is the tail of a message we dropped
                lines.pop(0)
                self.skipping_message = False
                self.oversized_messages += 1
            for line in lines:
                self._message(line, now)
        else:
            self._log_lines(stream, complete, now)

    def _log_lines(self, stream: str, complete: bytes, now) -> None:
        """Every line of `complete` (output up to a newline) as a log event: the hot path of a
        chatty run, so one decode and one pass for the whole chunk. (No byte of a multi-byte
        character is a newline, so decoding the chunk splits as decoding each line would.)"""
        text = complete.decode("utf-8", "replace")
        if "\x00" in text:
            text = text.replace("\x00", "\ufffd")  # PostgreSQL stores no NUL
        lines = text.split("\n")
        if "\r" in text:
            lines = [line.removesuffix("\r") for line in lines]
        limit = self.max_event_bytes
        if max(map(len, lines)) > limit:
            lines = [
                line
                if len(line) <= limit
                else f"{line[:limit]} [... line truncated, {len(line.encode())} bytes]"
                for line in lines
            ]
        self.logs.extend(lines)
        if self.stored is None:
            self.stored = RunEvent.objects.filter(run_id=self.run_obj.pk).count()
        # Two places stay free for events.dropped and the terminal event.
        room = max(0, self.max_events - 2 - self.stored - self.buffered)
        if room < len(lines):
            self.dropped["log"] += len(lines) - room
            lines = lines[:room]
        if not lines:
            return
        if not self.buffer:
            self.buffer_since = time.monotonic()
        self.buffer.append(LogLines(stream, lines, now))
        self.buffered += len(lines)

    def _tick(self) -> None:
        now = time.monotonic()
        if self.buffer and (
            self.buffered >= self.batch_size or now >= self.buffer_since + self.flush_seconds
        ):
            self._flush()
        if self.writer is not None and self.writer.error is not None and self.kill_reason is None:
            self.internal_error = f"storing events failed: {self.writer.error}"
            self._kill("internal")
        if now >= self.next_check:
            self.next_check = now + CHECK_INTERVAL
            self._check_run(now)
        if self.kill_reason is None:
            if registry.fenced():
                # This worker cannot prove its lease: others may soon call it dead and run this
                # elsewhere. Stop first (see runs/worker/registry.py).
                log.warning("%s: the worker lost its lease; stopping the run", self.run_obj.pk)
                self._kill("fenced")
            elif now >= self.deadline:
                self._kill("timeout")
            elif now >= self.cancel_kill_at:
                self._kill("cancel")
            elif engine.draining() and now >= engine.drain_deadline():
                self._kill("shutdown")

    def _check_run(self, now: float) -> None:
        """Look for a cancel request; heartbeat; notice if the run was taken away from us."""
        try:
            row = (
                Run.objects.filter(pk=self.run_obj.pk)
                .values_list("status", "worker", "cancel_requested_at", "cancel_reason")
                .first()
            )
            beat = None
            if now >= self.next_heartbeat and row is not None and row[1] == self.name:
                beat = lifecycle.heartbeat(self.run_obj.pk, self.name)
                self.next_heartbeat = now + settings.STUDIO_HEARTBEAT_SECONDS
        except DatabaseError:
            connection.close()  # reconnect on the next check
            silent = now - self.last_contact
            log.warning(
                "%s: database unreachable for %.1fs while supervising", self.run_obj.pk, silent
            )
            # Before the sweeper may hand this run to another worker, stop it here: a run must
            # never execute twice at once.
            if silent > settings.STUDIO_WORKER_LOST_SECONDS / 2:
                self._kill("lost")
            return
        self.last_contact = now
        if row is None or row[0] != RunStatus.RUNNING or row[1] != self.name or beat is False:
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

    def _kill(self, reason: str) -> None:
        if self.kill_reason is None:  # the first reason is the one that counts
            self.kill_reason = reason
        self.child.kill()

    # Events ------------------------------------------------------------------------------------

    def _message(self, raw: bytes, now) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self._log(
                "stderr", b"[studio] unreadable message from the task process: " + raw[:200], now
            )
            return
        if message.get("t") == "result":
            error = message.get("error")
            if error is not None and not isinstance(error, dict):
                message["error"] = lifecycle.error(error, "task_error")
            self.result = scrub(message)
        elif message.get("t") == "event":
            event_type = message.get("type")
            if (
                not isinstance(event_type, str)
                or not 0 < len(event_type) <= 100
                or event_type.startswith("run.")
                or event_type in RESERVED_EVENT_TYPES
            ):
                self._log(
                    "stderr",
                    f"[studio] dropped an event with an invalid type: {event_type!r:.120}".encode(),
                    now,
                )
                return
            self._add(event_type, scrub(message.get("payload")), now)

    def _log(self, stream: str, raw: bytes, now=None) -> None:
        """One line (or a part of an over-long one) as a log event."""
        self._log_lines(stream, raw, now or timezone.now())

    def _add(self, event_type: str, payload, now) -> None:
        if self.stored is None:
            self.stored = RunEvent.objects.filter(run_id=self.run_obj.pk).count()
        # Two places stay free for events.dropped and the terminal event.
        if self.stored + self.buffered >= self.max_events - 2:
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
        self.buffered += 1

    def _flush(self) -> None:
        if not self.buffer:
            return
        batch, count = self.buffer, self.buffered
        self.buffer, self.buffered = [], 0
        if self.writer is None and count >= WRITER_THRESHOLD:
            self.writer = EventWriter(self.run_obj.pk)
        if self.writer is not None:
            self.writer.put(batch)
        else:
            try:
                insert_events(self.run_obj.pk, batch)
            except DatabaseError:
                # Keep the batch and try again on a later tick; _check_run stops the run if the
                # database stays away.
                log.warning("%s: could not store %d events yet", self.run_obj.pk, len(batch))
                connection.close()
                self.buffer = batch + self.buffer
                self.buffered += count
                self.buffer_since = time.monotonic()
                return
        self.stored += count

    # The end -----------------------------------------------------------------------------------

    def _finish(self) -> None:
        run = self.run_obj
        if self.kill_reason == "lost":
            if self.writer is not None:
                self.writer.close(abandon=True)  # another worker owns the run now: add nothing
            log.warning(
                "%s was taken away from this worker (sweeper or operator); leaving it alone", run.pk
            )
            return
        if self.writer is not None:
            if self.buffer:
                self._flush()  # in order: all the writer has goes in before the final write
            writer, self.writer = self.writer, None
            writer.close()
        # A result counts only if the process then ended on its own before we had to stop it:
        # a task could write a forged result early and run on past its deadline.
        if self.kill_reason == "shutdown":
            self._flush()
            lifecycle.hand_back(run, self.name, "the worker shut down before the run finished")
            return
        result = (self.result or {}) if self.kill_reason is None else {}
        if result.get("ok"):
            # Checked here rather than in the task's process, where its code could interfere.
            invalid = output_error(self.definition, result.get("output"))
            if invalid is not None:
                result = {**result, "ok": False, "error": invalid}
        fields = {
            "logs": self.logs.text(),
            "exit_code": self.exit_code,
            "duration_ms": self.duration_ms,
        }
        events = self._final_events()
        if self.cancel_seen:
            reason = self.cancel_reason
            if self.kill_reason == "cancel":
                reason += (
                    f"; stopped after the {settings.STUDIO_CANCEL_GRACE_SECONDS:g}s grace period"
                )
            done = lifecycle.acknowledge_cancel(
                run,
                reason,
                worker=self.name,
                fields=fields,
                events=events,
                output=result.get("output"),
            )
        elif self.kill_reason is None and result.get("ok") and self.exit_code == 0:
            done = lifecycle.complete(
                run, result.get("output"), worker=self.name, fields=fields, events=events
            )
        else:
            error = self._failure(result)
            if run.attempt <= run.backoff_limit:
                delay = engine.backoff_delay(run.attempt)
                done = "lost" != lifecycle.retry_later(
                    run, error, worker=self.name, delay=delay, fields=fields, events=events
                )
            else:
                fields["output"] = result.get("output")
                done = lifecycle.fail(run, error, worker=self.name, fields=fields, events=events)
        if done:
            self.buffer, self.buffered = [], 0
        else:
            log.warning("%s changed hands before it could be finished; result dropped", run.pk)

    def _final_events(self) -> list:
        """What is still buffered, and a note of dropped events, for the final write."""
        rows = event_rows(self.buffer)
        if self.dropped:
            dropped = {
                "dropped": sum(self.dropped.values()),
                "by_type": dict(self.dropped),
                "limit": self.max_events,
            }
            rows.append(("events.dropped", dropped, timezone.now()))
        return rows

    def _failure(self, result: dict) -> dict:
        exit_code = self.exit_code
        if self.spawn_error:
            return lifecycle.error(self.spawn_error, "spawn_failed")
        if self.internal_error:
            return lifecycle.error(
                f"Studio could not supervise the run: {self.internal_error}", "internal_error"
            )
        if self.kill_reason == "fenced":
            return lifecycle.error(
                "the worker lost its connection to the database and stopped the run",
                "worker_lost",
            )
        if self.kill_reason == "timeout":
            limit = self.run_obj.timeout_seconds
            return lifecycle.error(
                f"the run exceeded its timeout of {limit}s and was stopped", "timeout"
            )
        if result.get("error"):
            err = result["error"]
            return lifecycle.error(
                err.get("message", ""), err.get("code") or "task_error", err.get("detail")
            )
        if self.oversized_messages:
            return lifecycle.error(
                f"the task produced a result or event larger than {MAX_MESSAGE_BYTES // 2**20} MiB; "
                "it was dropped",
                "output_too_large",
            )
        limit = LIMIT_SIGNALS.get(exit_code - 128) if exit_code and exit_code > 128 else None
        counted = getattr(self.child, "limit", None)  # what the run's cgroup counted
        if limit is not None or counted in LIMIT_CODES:  # the kernel's signal, or a cgroup's
            name = (
                counted
                if counted in LIMIT_CODES
                else next(n for n, (code, _) in LIMIT_CODES.items() if code == limit)
            )
            limits = {**sandboxing.policy().limits, **(self.definition.limits or {})}
            hit = limit_error(name, limits)
            return lifecycle.error(hit["message"], hit["code"])
        if exit_code is None:
            message = "the task process was lost with its fork server (killed from outside Studio?)"
        elif exit_code > 128:
            number = exit_code - 128
            name = (
                signal.Signals(number).name
                if number in signal.Signals._value2member_map_
                else number
            )
            message = f"the task process was killed by {name}"
            if number == signal.SIGKILL:
                message += " (out of memory, or killed from outside Studio)"
        else:
            message = f"the task process exited with code {exit_code} before returning"
        return lifecycle.error(message, "process_died")
