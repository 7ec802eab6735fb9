"""Run ids: `run_` and 32 hex digits. The one pattern every entry point checks ids against."""

from __future__ import annotations

import re
import uuid

RUN_ID_RE = re.compile(r"run_[0-9a-f]{32}")


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex}"


def is_run_id(value: object) -> bool:
    """Whether `value` can name a run (so a malformed one is answered without a query)."""
    return isinstance(value, str) and RUN_ID_RE.fullmatch(value) is not None
