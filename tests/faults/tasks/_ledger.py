"""The append-only ledger every fault-suite task writes: one JSON line per start, tick and end.

Each line is one write() of well under PIPE_BUF bytes to a file opened with O_APPEND, so lines
from many processes never interleave. The suite reads it to find two attempts of a run that ran
at the same time, and processes that outlived their run."""

from __future__ import annotations

import json
import os
import time


def record(ctx, what: str, **extra) -> None:
    path = os.environ.get("FAULTS_LEDGER")
    if not path:
        return
    line = json.dumps(
        {
            "run": ctx.run_id,
            "attempt": ctx.attempt,
            "pid": os.getpid(),
            "what": what,
            "t": time.time(),
            **extra,
        }
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def busy(ctx, seconds: float, tick: float = 0.2) -> bool:
    """Work for `seconds`, recording a tick now and then; False if cancelled first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ctx.cancelled:
            return False
        record(ctx, "tick")
        time.sleep(min(tick, max(0.0, deadline - time.monotonic())))
    return True
