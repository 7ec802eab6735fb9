"""What a schedule is, as plain data: validation of its fields and its fire times.

No Django here: the file-schedule loader (which may run in a sandboxed discovery process) and the
database side share these rules. Cron expressions are evaluated by cronsim (Debian cron
semantics, including across daylight-saving changes); Studio only maps the `@daily`-style
aliases to their five-field forms and says which field is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,98}[a-z0-9])?$")
TARGET_RE = re.compile(r"^(task|workflow):[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")

CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace", "BufferOne")
CATCH_UP_MODES = ("latest", "none", "all")
DEFAULT_STARTING_DEADLINE_SECONDS = 3600
MAX_INTERVAL_SECONDS = 366 * 24 * 3600
MAX_PREVIEW = 100

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L, W"),
    ("month", "1-12 or jan-dec"),
    ("day-of-week", "0-7 or sun-sat, L, #"),
)

# The fields a client sends (and gets back). Read-only ones are added by the database side.
WRITABLE_FIELDS = (
    "id",
    "name",
    "description",
    "target",
    "input",
    "config",
    "timeout_seconds",
    "backoff_limit",
    "cron",
    "interval_seconds",
    "run_at",
    "timezone",
    "start_at",
    "end_at",
    "max_runs",
    "concurrency_policy",
    "catch_up",
    "starting_deadline_seconds",
    "enabled",
    "pause_note",
)


class SpecError(ValueError):
    """One or more fields of a schedule are wrong. `errors` is a list of (field, message, rule)."""

    def __init__(self, errors: list[tuple[str, str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{f}: {m}" for f, m, _ in errors))


# --- Cron -------------------------------------------------------------------------------------


def normalize_cron(expr: str) -> str:
    """The five-field form of `expr` (aliases expanded); SpecError naming the bad field."""
    if not isinstance(expr, str) or not expr.strip():
        raise SpecError([("cron", "must be a cron expression such as '0 2 * * *'", "type")])
    text = " ".join(expr.split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise SpecError(
                [
                    (
                        "cron",
                        f"unknown alias {text!r}; use one of {', '.join(sorted(ALIASES))}",
                        "alias",
                    )
                ]
            )
        return ALIASES[text.lower()]
    parts = text.split(" ")
    if len(parts) != 5:
        raise SpecError(
            [
                (
                    "cron",
                    f"must have 5 fields (minute hour day-of-month month day-of-week), "
                    f"it has {len(parts)}; for a cadence under a minute use interval_seconds",
                    "fields",
                )
            ]
        )
    try:
        CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise SpecError([("cron", _explain_cron_error(parts, str(exc)), "cron")]) from None
    return text


def _explain_cron_error(parts: list[str], message: str) -> str:
    # cronsim says "Bad minute"; say which text it was and what the field accepts.
    lowered = message.lower()
    for index, (name, allowed) in enumerate(CRON_FIELDS):
        if name in lowered:
            return f"{name} field {parts[index]!r} is not valid (allowed: {allowed})"
    return f"not a valid cron expression: {message}"


def describe_cron(expr: str) -> str:
    """A human description, e.g. "At 02:00 every day"."""
    try:
        return CronSim(normalize_cron(expr), datetime(2000, 1, 1, tzinfo=UTC)).explain()
    except (SpecError, CronSimError, ValueError):
        return ""


# --- Values -----------------------------------------------------------------------------------


def zone(name: Any) -> ZoneInfo:
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise SpecError([("timezone", f"unknown time zone {name!r} (use an IANA name)", "zone")])
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError(
            [
                (
                    "timezone",
                    f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)",
                    "zone",
                )
            ]
        ) from None


def parse_datetime(value: Any, field: str, tz: ZoneInfo) -> datetime | None:
    """An aware UTC datetime from an ISO string or datetime; naive values are read in `tz`."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise SpecError(
                [(field, f"{value!r} is not an ISO 8601 date-time", "format")]
            ) from None
    if not isinstance(value, datetime):
        raise SpecError([(field, "must be an ISO 8601 date-time string", "type")])
    if not 1970 <= value.year <= 9000:
        # Far enough for any schedule, and clear of datetime's limits when zones shift it.
        raise SpecError([(field, "must be between the years 1970 and 9000", "range")])
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _int(
    data: dict, name: str, minimum: int, maximum: int, errors: list, default: Any = None
) -> Any:
    value = data.get(name, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        errors.append((name, "must be an integer", "type"))
        return None
    if value < minimum:
        errors.append((name, f"must be at least {minimum}", "minimum"))
    elif value > maximum:
        errors.append((name, f"must be at most {maximum}", "maximum"))
    return value


def _text(data: dict, name: str, max_length: int, errors: list, default: str = "") -> str:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        errors.append((name, "must be a string", "type"))
        return default
    if "\x00" in value:
        errors.append((name, "must not contain NUL characters", "storable"))
    if len(value) > max_length:
        errors.append((name, f"must be at most {max_length} characters", "maxLength"))
    return value


def clean(data: dict, *, require_id: bool = True) -> dict:
    """Check every field of a schedule; return them normalised, or raise SpecError listing
    every problem. Does not look at the target's definition (the caller does)."""
    if not isinstance(data, dict):
        raise SpecError([("body", "must be a JSON object", "type")])
    errors: list[tuple[str, str, str]] = []
    unknown = sorted(set(data) - set(WRITABLE_FIELDS))
    for name in unknown:
        errors.append((name, "is not a schedule field", "additionalProperties"))
    out: dict[str, Any] = {}

    sid = data.get("id")
    if sid is None and require_id:
        errors.append(("id", "is required", "required"))
    elif sid is not None and (not isinstance(sid, str) or not ID_RE.match(sid)):
        errors.append(
            (
                "id",
                "must be 1-100 lowercase letters, digits, '-' or '_', starting and ending "
                "with a letter or digit",
                "pattern",
            )
        )
    out["id"] = sid

    target = data.get("target")
    if target is None:
        errors.append(("target", "is required", "required"))
    elif not isinstance(target, str) or not TARGET_RE.match(target):
        errors.append(("target", "must look like task:<id> or workflow:<id>", "pattern"))
    out["target"] = target

    out["name"] = _text(data, "name", 255, errors)
    out["description"] = _text(data, "description", 2000, errors)
    out["pause_note"] = _text(data, "pause_note", 500, errors)
    for name in ("input", "config"):
        value = data.get(name)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            errors.append((name, "must be a JSON object", "type"))
        out[name] = value
    out["timeout_seconds"] = _int(data, "timeout_seconds", 1, 2_147_483_647, errors)
    out["backoff_limit"] = _int(data, "backoff_limit", 0, 100, errors)
    out["max_runs"] = _int(data, "max_runs", 1, 2_147_483_647, errors)
    deadline = _int(data, "starting_deadline_seconds", 1, 2_147_483_647, errors)
    out["starting_deadline_seconds"] = (
        DEFAULT_STARTING_DEADLINE_SECONDS if deadline is None else deadline
    )

    try:
        tz = zone(data.get("timezone") or "UTC")
        out["timezone"] = tz.key
    except SpecError as exc:
        errors += exc.errors
        tz = ZoneInfo("UTC")
        out["timezone"] = data.get("timezone")

    kinds = [k for k in ("cron", "interval_seconds", "run_at") if data.get(k) not in (None, "")]
    if len(kinds) != 1:
        message = (
            "give exactly one of cron, interval_seconds or run_at"
            if not kinds
            else f"give only one of cron, interval_seconds or run_at (got {', '.join(kinds)})"
        )
        errors.append((kinds[1] if len(kinds) > 1 else "cron", message, "oneOf"))
    out["cron"] = None
    out["interval_seconds"] = None
    out["run_at"] = None
    if "cron" in kinds:
        try:
            out["cron"] = normalize_cron(data["cron"])
        except SpecError as exc:
            errors += exc.errors
    if "interval_seconds" in kinds:
        out["interval_seconds"] = _int(data, "interval_seconds", 1, MAX_INTERVAL_SECONDS, errors)
    for name in ("run_at", "start_at", "end_at"):
        try:
            out[name] = parse_datetime(data.get(name), name, tz)
        except SpecError as exc:
            errors += exc.errors
            out[name] = None
    if out["start_at"] and out["end_at"] and out["end_at"] <= out["start_at"]:
        errors.append(("end_at", "must be after start_at", "minimum"))

    policy = data.get("concurrency_policy") or "Allow"
    if policy not in CONCURRENCY_POLICIES:
        errors.append(
            ("concurrency_policy", f"must be one of {', '.join(CONCURRENCY_POLICIES)}", "enum")
        )
    out["concurrency_policy"] = policy
    catch_up = data.get("catch_up") or "latest"
    if catch_up not in CATCH_UP_MODES:
        errors.append(("catch_up", f"must be one of {', '.join(CATCH_UP_MODES)}", "enum"))
    out["catch_up"] = catch_up
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        errors.append(("enabled", "must be true or false", "type"))
    out["enabled"] = enabled
    if errors:
        raise SpecError(sorted(set(errors), key=lambda e: e[0]))
    return out


# --- Fire times -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """The part of a schedule that says when it fires. All datetimes are aware (UTC)."""

    timezone: str = "UTC"
    cron: str | None = None
    interval_seconds: int | None = None
    run_at: datetime | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    anchor: datetime | None = None  # where interval counting starts when there is no start_at

    def slots_after(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after `after`, in order, as UTC datetimes; ends at end_at."""
        after = after.astimezone(UTC)
        if self.start_at is not None and after < self.start_at:
            # start_at itself may be a slot.
            after = self.start_at - timedelta(microseconds=1)
        for slot in self._raw_slots_after(after):
            if self.end_at is not None and slot > self.end_at:
                return
            yield slot

    def next_after(self, after: datetime) -> datetime | None:
        return next(self.slots_after(after), None)

    def _raw_slots_after(self, after: datetime) -> Iterator[datetime]:
        if self.run_at is not None:
            if self.run_at > after:
                yield self.run_at
            return
        if self.interval_seconds:
            # Absolute time: every interval from the anchor, whatever the wall clock does.
            anchor = self.start_at or self.anchor or datetime(2000, 1, 1, tzinfo=UTC)
            step = timedelta(seconds=self.interval_seconds)
            if after < anchor:
                n = 0
            else:
                n = int((after - anchor) // step) + 1
            while True:
                try:
                    yield anchor + n * step
                except OverflowError:  # past year 9999
                    return
                n += 1
        if self.cron:
            try:
                local = after.astimezone(ZoneInfo(self.timezone))
                for slot in CronSim(self.cron, local):
                    yield slot.astimezone(UTC)
            except (CronSimError, StopIteration, OverflowError):
                return


def timing_of(data: dict) -> Timing:
    return Timing(
        timezone=data.get("timezone") or "UTC",
        cron=data.get("cron"),
        interval_seconds=data.get("interval_seconds"),
        run_at=data.get("run_at"),
        start_at=data.get("start_at"),
        end_at=data.get("end_at"),
        anchor=data.get("anchor"),
    )


def preview(timing: Timing, now: datetime, count: int) -> list[datetime]:
    """The next `count` fire times from now or from start_at, whichever is later."""
    start = max(now, timing.start_at) if timing.start_at else now
    out = []
    for slot in timing.slots_after(start - timedelta(microseconds=1)):
        out.append(slot)
        if len(out) >= count:
            break
    return out
