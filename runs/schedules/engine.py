"""Firing: turn due slots into runs, exactly once, whatever the number of workers.

`tick()` claims a batch of due schedules in one transaction, with a row lock that skips rows
another worker holds (PostgreSQL) or an immediate transaction (SQLite, where the whole database
is the lock). For each schedule, in a savepoint of that transaction: record every due slot in
the ledger (unique per schedule + slot), create the run through runs.service, and advance
next_fire_at. A crash anywhere rolls the whole thing back; a slot another worker already
recorded fails the unique key and is left alone.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from .. import lifecycle, service
from ..models import ACTIVE_STATUSES, Run, Schedule, ScheduleOccurrence
from .spec import Timing
from .store import ScheduleError, resolve_target

log = logging.getLogger(__name__)

Outcome = ScheduleOccurrence.Outcome
_EPS = timedelta(microseconds=1)
_MAX_COUNTED = 1_000_000


@dataclass
class TickResult:
    schedules: int = 0
    fired: list[str] = field(default_factory=list)  # run ids
    # Targets already checked in this tick (a batch often names the same task many times).
    targets: dict[str, str] = field(default_factory=dict)


# What firing changes on a schedule; saving only these never overwrites an edit made meanwhile.
BOOKKEEPING = [
    "next_fire_at",
    "buffered_slot",
    "last_fired_at",
    "last_run_id",
    "run_count",
    "fire_error",
    "done_at",
    "done_reason",
    "updated_at",
]


def _locked(queryset):
    if connection.features.has_select_for_update_skip_locked:
        # Another worker's batch is skipped, not waited for: it is being fired right now.
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset


def tick(now: datetime | None = None, *, batch: int | None = None) -> TickResult:
    """Fire what is due at `now` (default: the clock). Returns what it did."""
    batch = batch or settings.STUDIO_SCHEDULER_BATCH
    result = TickResult()
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            _locked(Schedule.objects.due(now).select_related("project").order_by("next_fire_at"))[
                :batch
            ]
        )
        result.schedules += len(due)
        for schedule in _fire_burst(due, now, result):
            _guarded(_fire_due, schedule, now, result)
    _release_buffered(now, result)
    return result


def _guarded(fn, schedule: Schedule, now: datetime, result: TickResult) -> None:
    fired_before = len(result.fired)
    try:
        with transaction.atomic():
            fn(schedule, now, result)
    except IntegrityError:
        # A slot of this schedule is in the ledger already: another worker (or a crashed
        # earlier attempt that committed) handled it. Everything done here is rolled back.
        del result.fired[fired_before:]
        log.warning("schedule %s: a due slot is in the ledger already; moving past it", schedule)
        with transaction.atomic():
            _skip_recorded_slots(schedule, now)
    except Exception as exc:
        # A bug or an unexpected database error must not wedge the loop on this schedule
        # (it would be picked again every tick): record the slot as failed and move on.
        del result.fired[fired_before:]
        log.exception("schedule %s could not fire", schedule)
        with transaction.atomic():
            slot = schedule.next_fire_at or now
            try:
                with transaction.atomic():
                    _record(schedule, slot, Outcome.FAILED_TO_FIRE, reason=f"internal error: {exc}")
            except IntegrityError:
                pass  # the slot has a row already; moving on is what matters
            schedule.refresh_from_db()
            schedule.fire_error = f"internal error: {exc}"
            _advance(schedule, now)
            schedule.save(update_fields=BOOKKEEPING)


def _skip_recorded_slots(schedule: Schedule, now: datetime) -> None:
    """next_fire_at points at a slot the ledger already has (a stale row, a restored backup):
    move it past the newest recorded slot, so the loop does not trip over it every tick."""
    latest = schedule.occurrences.order_by("-slot").values_list("slot", flat=True).first()
    fresh = Schedule.objects.get(pk=schedule.pk)
    if latest is not None and fresh.next_fire_at is not None and fresh.next_fire_at <= latest:
        fresh.next_fire_at = fresh.timing.next_after(latest)
        _retire_if_spent(fresh, now)
        fresh.save()


def _release_buffered(now: datetime, result: TickResult) -> None:
    """BufferOne: start a waiting slot once no run of its schedule is active any more."""
    with transaction.atomic():
        waiting = list(
            # A paused schedule keeps its buffered slot until it is resumed.
            _locked(
                Schedule.objects.filter(buffered_slot__isnull=False, enabled=True).select_related(
                    "project"
                )
            )[: settings.STUDIO_SCHEDULER_BATCH]
        )
        for schedule in waiting:
            if _active_runs(schedule).exists():
                continue
            result.schedules += 1
            _guarded(_fire_buffered, schedule, now, result)


def _fire_buffered(schedule: Schedule, now: datetime, result: TickResult) -> None:
    slot = schedule.buffered_slot
    schedule.buffered_slot = None
    occurrence = ScheduleOccurrence.objects.filter(schedule=schedule, slot=slot).first()
    run, reason = _create_run(schedule, slot, result)
    if occurrence is not None:
        occurrence.outcome = Outcome.FIRED if run else Outcome.FAILED_TO_FIRE
        occurrence.run_id = run.pk if run else None
        occurrence.reason = ("buffered until the previous run ended" if run else reason)[:500]
        occurrence.save(update_fields=["outcome", "run_id", "reason"])
    if run:
        _count_fired(schedule, run, now, result)
    else:
        schedule.fire_error = reason
    _retire_if_spent(schedule, now)
    schedule.save(update_fields=BOOKKEEPING)


# --- A batch at once ---------------------------------------------------------------------------
#
# A burst (hundreds of schedules due in one second) is fired with a few statements, not eight per
# schedule: _fire_due decides each schedule's slots exactly as it does alone, but through a
# _Burst that keeps its writes, and then all the batch's runs, their `run.created` events, the
# ledger rows and the schedules' bookkeeping go in with one bulk statement each, in a savepoint
# of the tick's transaction. What a burst cannot do without writing first (a workflow target,
# Replace cancelling an active run) is fired one schedule at a time afterwards, as is the whole
# batch when the bulk ledger insert finds a slot recorded already (the unique key stays the
# guard of exactly-once; _guarded then sorts it out schedule by schedule).


class _Writer:
    """Where _fire_due's decisions go: straight to the database, one statement each."""

    def record(self, schedule, slot, outcome, *, reason="", count=1, run_id=None) -> None:
        _record(schedule, slot, outcome, reason=reason, count=count, run_id=run_id)

    def active(self, schedule: Schedule) -> list[Run]:
        return list(_active_runs(schedule).order_by("created_at").only("pk", "status"))

    def replace(self, active: list[Run], slot: datetime) -> None:
        for run in active:
            service.cancel_run(run, reason=f"replaced by the schedule's slot {slot.isoformat()}")

    def create_run(self, schedule, slot, result) -> tuple[Run | None, str]:
        return _create_run(schedule, slot, result)

    def save(self, schedule: Schedule) -> None:
        schedule.save(update_fields=BOOKKEEPING)


_NOW = _Writer()


class _OneAtATime(Exception):
    """This schedule needs the one-at-a-time path (it must write before it can decide)."""


class _Burst(_Writer):
    """Keeps a batch's writes, to store them with one statement per table (write())."""

    def __init__(self, due: list[Schedule]):
        self.built: list[tuple[Run, str]] = []  # (run, task id)
        self.occurrences: list[ScheduleOccurrence] = []
        self.schedules: list[Schedule] = []
        self.pending: dict[int, list[Run]] = {}  # runs built in this batch, per schedule
        self.running = self._active_of(due)

    @staticmethod
    def _active_of(due: list[Schedule]) -> dict[tuple[int, str], list[Run]]:
        """Active runs of the batch's schedules that have a concurrency policy: one query."""
        guarded = [s for s in due if s.concurrency_policy != Schedule.Policy.ALLOW]
        found: dict[tuple[int, str], list[Run]] = {}
        if not guarded:
            return found
        runs = (
            Run.objects.filter(
                project_id__in={s.project_id for s in guarded},
                schedule_id__in={s.slug for s in guarded},
                status__in=ACTIVE_STATUSES,
            )
            .order_by("created_at")
            .only("pk", "status", "project_id", "schedule_id")
        )
        for run in runs:
            found.setdefault((run.project_id, run.schedule_id), []).append(run)
        return found

    def mark(self) -> tuple[int, int]:
        return len(self.built), len(self.occurrences)

    def forget(self, schedule: Schedule, mark: tuple[int, int]) -> None:
        """Drop what was kept for `schedule` since `mark` (it goes the one-at-a-time way)."""
        del self.built[mark[0] :]
        del self.occurrences[mark[1] :]
        self.pending.pop(schedule.pk, None)
        if self.schedules and self.schedules[-1] is schedule:
            self.schedules.pop()

    def record(self, schedule, slot, outcome, *, reason="", count=1, run_id=None) -> None:
        self.occurrences.append(
            ScheduleOccurrence(
                schedule=schedule,
                slot=slot,
                outcome=outcome,
                reason=reason[:500],
                count=count,
                run_id=run_id,
            )
        )

    def active(self, schedule: Schedule) -> list[Run]:
        return self.running.get((schedule.project_id, schedule.slug), []) + self.pending.get(
            schedule.pk, []
        )

    def replace(self, active: list[Run], slot: datetime) -> None:
        raise _OneAtATime("Replace cancels the active run first")

    def create_run(self, schedule, slot, result) -> tuple[Run | None, str]:
        try:
            problem = _target_problem(schedule, result)
            if problem:
                return None, problem
            run, definition = service.build_task_run(
                schedule.project, **_run_fields(schedule, slot)
            )
        except ScheduleError as exc:
            return None, exc.message
        except service.RunError as exc:
            return None, exc.message
        self.built.append((run, definition.id))
        self.pending.setdefault(schedule.pk, []).append(run)
        return run, ""

    def save(self, schedule: Schedule) -> None:
        self.schedules.append(schedule)

    def write(self) -> None:
        now = timezone.now()
        runs = [run for run, _ in self.built]
        for run in runs:
            # Created when stored: what the lag between a slot and its run is measured from.
            run.created_at = run.enqueued_at = now
        lifecycle.create_many(runs, task_ids=[task_id for _, task_id in self.built])
        ScheduleOccurrence.objects.bulk_create(self.occurrences)
        for schedule in self.schedules:
            schedule.updated_at = now
        _save_bookkeeping(self.schedules)


def _save_bookkeeping(schedules: list[Schedule]) -> None:
    """The BOOKKEEPING fields of many schedules. PostgreSQL: one UPDATE ... FROM (VALUES ...)
    per 500 (Django's bulk_update builds a CASE expression per field and row, which costs more
    CPU than the saves it replaces). Elsewhere (SQLite, small batches): one save each."""
    if connection.vendor != "postgresql":
        for schedule in schedules:
            schedule.save(update_fields=BOOKKEEPING)
        return
    meta = Schedule._meta
    fields = [meta.get_field(name) for name in BOOKKEEPING]
    columns = [meta.pk.column] + [f.column for f in fields]
    casts = [meta.pk.db_type(connection)] + [f.db_type(connection) for f in fields]
    row = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
    quote = connection.ops.quote_name
    assign = ", ".join(f"{quote(c)} = v.{quote(c)}" for c in columns[1:])
    names = ", ".join(quote(c) for c in columns)
    table = quote(meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(schedules), 500):
            chunk = schedules[start : start + 500]
            params: list = []
            for schedule in chunk:
                params.append(schedule.pk)
                params += [
                    f.get_db_prep_save(getattr(schedule, f.attname), connection) for f in fields
                ]
            cursor.execute(
                f"UPDATE {table} AS s SET {assign} FROM (VALUES "
                + ", ".join([row] * len(chunk))
                + f") AS v ({names}) WHERE s.{quote(meta.pk.column)} = v.{quote(meta.pk.column)}",
                params,
            )


def _fire_burst(due: list[Schedule], now: datetime, result: TickResult) -> list[Schedule]:
    """Fire what of `due` can be fired in bulk; return the schedules left to fire one at a time."""
    alone: list[Schedule] = []
    burst = _Burst(due)
    kept: list[tuple[Schedule, dict]] = []
    fired_before = len(result.fired)
    for schedule in due:
        if schedule.target.startswith("workflow:"):
            alone.append(schedule)
            continue
        before = {name: getattr(schedule, name) for name in BOOKKEEPING}
        mark, fired = burst.mark(), len(result.fired)
        try:
            _fire_due(schedule, now, result, burst)
        except Exception as exc:
            # Replace with an active run, or anything unexpected: the one-at-a-time path (and
            # its _guarded) handles it, from the schedule as it was read.
            if not isinstance(exc, _OneAtATime):
                log.exception("schedule %s: bulk firing failed; firing it alone", schedule)
            burst.forget(schedule, mark)
            del result.fired[fired:]
            for name, value in before.items():
                setattr(schedule, name, value)
            alone.append(schedule)
            continue
        kept.append((schedule, before))
    if not burst.schedules:
        return alone
    try:
        with transaction.atomic():
            burst.write()
    except Exception as exc:
        # None of the batch was stored. Most likely a slot of it is in the ledger already (a
        # stale row, a restored backup): fire the batch one schedule at a time, where that slot
        # is skipped and anything else is caught per schedule (never a wedged loop).
        if isinstance(exc, IntegrityError):
            log.warning("a due slot of the batch is in the ledger already; firing one at a time")
        else:
            log.exception("storing a batch of fired schedules failed; firing one at a time")
        del result.fired[fired_before:]
        for schedule, before in kept:
            for name, value in before.items():
                setattr(schedule, name, value)
        return [schedule for schedule, _ in kept] + alone
    return alone


# --- One schedule ------------------------------------------------------------------------------


def _fire_due(
    schedule: Schedule, now: datetime, result: TickResult, out: _Writer | None = None
) -> None:
    out = out or _NOW
    # Another worker may have fired it between our read and our lock (SQLite reads inside the
    # immediate transaction, so only PostgreSQL's skip-locked needs this): look again.
    if not schedule.enabled or schedule.next_fire_at is None or schedule.next_fire_at > now:
        return
    keep = settings.STUDIO_SCHEDULE_CATCH_UP_MAX if schedule.catch_up == "all" else 1
    recent, older_first, older_count = _due_slots(schedule.timing, schedule.next_fire_at, now, keep)
    if older_count:
        reason = {
            "latest": "downtime: catch_up latest fires only the most recent missed slot",
            "none": "downtime: catch_up none fires no missed slot",
            "all": f"downtime: beyond the catch_up all limit of {keep} slots",
        }[schedule.catch_up]
        out.record(schedule, older_first, Outcome.MISSED, reason=reason, count=older_count)
    for index, slot in enumerate(recent):
        late = (now - slot).total_seconds()
        newest = index == len(recent) - 1
        if schedule.catch_up == "latest" and late > schedule.starting_deadline_seconds:
            out.record(
                schedule,
                slot,
                Outcome.MISSED,
                reason=f"downtime: {late:.0f}s late, beyond starting_deadline_seconds "
                f"({schedule.starting_deadline_seconds})",
            )
        elif schedule.catch_up == "none" and (
            not newest
            or late
            > min(settings.STUDIO_SCHEDULE_ON_TIME_SECONDS, schedule.starting_deadline_seconds)
        ):
            out.record(schedule, slot, Outcome.MISSED, reason=f"catch_up none: {late:.0f}s late")
        elif schedule.max_runs is not None and schedule.run_count >= schedule.max_runs:
            break
        else:
            _fire_slot(schedule, slot, now, result, out)
    _advance(schedule, now)
    out.save(schedule)


def _due_slots(
    timing: Timing, first: datetime, now: datetime, keep: int
) -> tuple[list[datetime], datetime | None, int]:
    """The newest `keep` slots in [first, now], and the first and number of the older ones."""
    if timing.interval_seconds and not timing.run_at:
        # Arithmetic, not iteration: a week of downtime of a 1-second interval is 600k slots.
        step = timedelta(seconds=timing.interval_seconds)
        last_allowed = min(now, timing.end_at) if timing.end_at else now
        if first > last_allowed:
            return [], None, 0
        total = int((last_allowed - first) // step) + 1
        slots = [first + i * step for i in range(max(0, total - keep), total)]
        older = total - len(slots)
        return slots, (first if older else None), older
    recent: deque[datetime] = deque(maxlen=keep)
    older_first, older_count = None, 0
    for slot in timing.slots_after(first - _EPS):
        if slot > now:
            break
        if len(recent) == keep:
            older_first = older_first or recent[0]
            older_count += 1
        recent.append(slot)
        if older_count >= _MAX_COUNTED:
            break
    return list(recent), older_first, older_count


def _active_runs(schedule: Schedule):
    return Run.objects.filter(
        project_id=schedule.project_id, schedule_id=schedule.slug, status__in=ACTIVE_STATUSES
    )


def _fire_slot(
    schedule: Schedule, slot: datetime, now: datetime, result: TickResult, out: _Writer
) -> None:
    policy = schedule.concurrency_policy
    if policy != Schedule.Policy.ALLOW:
        active = out.active(schedule)
        if active and policy == Schedule.Policy.FORBID:
            out.record(
                schedule,
                slot,
                Outcome.SKIPPED_OVERLAP,
                reason=f"Forbid: run {active[0].pk} is still {active[0].status}",
            )
            return
        if active and policy == Schedule.Policy.BUFFER_ONE:
            if schedule.buffered_slot is not None:
                out.record(
                    schedule,
                    slot,
                    Outcome.SKIPPED_OVERLAP,
                    reason="BufferOne: a slot is already waiting for the active run",
                )
            else:
                out.record(
                    schedule,
                    slot,
                    Outcome.BUFFERED,
                    reason=f"BufferOne: starts when run {active[0].pk} ends",
                )
                schedule.buffered_slot = slot
            return
        if active and policy == Schedule.Policy.REPLACE:
            out.replace(active, slot)
    run, reason = out.create_run(schedule, slot, result)
    # The ledger row goes in after the run, carrying its id: one insert. Should the slot be
    # in the ledger already (fired by another worker), the unique key fails and _guarded rolls
    # the whole savepoint back, this run (and any Replace cancel) included.
    out.record(
        schedule,
        slot,
        Outcome.FIRED if run else Outcome.FAILED_TO_FIRE,
        run_id=run.pk if run else None,
        reason=reason,
    )
    if run is None:
        schedule.fire_error = reason
        return
    _count_fired(schedule, run, now, result)


def _target_problem(schedule: Schedule, result: TickResult) -> str:
    """Why the schedule's target cannot run now ("" if it can), checked once per tick."""
    if schedule.target not in result.targets:
        try:
            resolve_target(schedule.target)
            result.targets[schedule.target] = ""
        except ScheduleError as exc:
            result.targets[schedule.target] = exc.message
    return result.targets[schedule.target]


def _run_fields(schedule: Schedule, slot: datetime) -> dict:
    return {
        "target": schedule.target,
        "input": schedule.input,
        "config": schedule.config,
        "timeout_seconds": schedule.timeout_seconds,
        "backoff_limit": schedule.backoff_limit,
        "trigger_kind": Run.Trigger.SCHEDULE,
        "trigger_id": schedule.slug,
        "schedule_id": schedule.slug,
        "created_by": f"schedule:{schedule.slug}",
        "metadata": {"scheduled_for": slot.isoformat().replace("+00:00", "Z")},
    }


def _create_run(schedule: Schedule, slot: datetime, result: TickResult) -> tuple[Run | None, str]:
    """The run for a slot, or (None, why not). The target and input are checked again (by
    create_run): the task may have changed since the schedule was saved."""
    try:
        problem = _target_problem(schedule, result)
        if problem:
            return None, problem
        created = service.create_run(schedule.project, **_run_fields(schedule, slot))
    except ScheduleError as exc:
        return None, exc.message
    except service.RunError as exc:
        return None, exc.message
    return created.run, ""


def _count_fired(schedule: Schedule, run: Run, now: datetime, result: TickResult) -> None:
    schedule.run_count += 1
    schedule.last_fired_at = now
    schedule.last_run_id = run.pk
    schedule.fire_error = ""
    result.fired.append(run.pk)


def _record(
    schedule: Schedule,
    slot: datetime,
    outcome: str,
    *,
    reason: str = "",
    count: int = 1,
    run_id: str | None = None,
) -> ScheduleOccurrence:
    """Add the slot to the ledger. A slot already there raises IntegrityError (see _guarded)."""
    return ScheduleOccurrence.objects.create(
        schedule=schedule,
        slot=slot,
        outcome=outcome,
        reason=reason[:500],
        count=count,
        run_id=run_id,
    )


def _advance(schedule: Schedule, now: datetime) -> None:
    schedule.next_fire_at = schedule.timing.next_after(now)
    _retire_if_spent(schedule, now)


def _retire_if_spent(schedule: Schedule, now: datetime) -> None:
    if schedule.done_at is not None:
        return
    if schedule.max_runs is not None and schedule.run_count >= schedule.max_runs:
        schedule.done_reason = f"reached max_runs ({schedule.max_runs})"
    elif schedule.next_fire_at is None and schedule.buffered_slot is None:
        schedule.done_reason = (
            "fired its one time" if schedule.run_at else "no fire time left (end_at has passed)"
        )
    else:
        return
    schedule.done_at = now
    schedule.next_fire_at = None


def next_due_at() -> datetime | None:
    """When the next enabled schedule is due (for the loop's sleep)."""
    return (
        Schedule.objects.live()
        .filter(enabled=True, next_fire_at__isnull=False)
        .order_by("next_fire_at")
        .values_list("next_fire_at", flat=True)
        .first()
    )
