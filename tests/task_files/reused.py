"""A task whose runs share one process (reuse_process=True). Each run counts itself in a
module global and reports the count and which process it ran in; `do` picks what else it does.
"""

import os
import sys
import time
import uuid

from runs.definitions import task

COUNT = 0
PROCESS = uuid.uuid4().hex  # made once per process: tells one process from another


def attempt(fn):
    try:
        return f"GOT: {str(fn())[:80]}"
    except BaseException as exc:  # noqa: BLE001 - every way of failing is a success here
        return f"denied: {type(exc).__name__}: {exc}"


@task(
    name="Reused",
    reuse_process=True,
    output_schema={"type": "object", "required": ["count"]},
)
def run(ctx):
    global COUNT
    COUNT += 1
    do = ctx.input.get("do", "count")
    print(f"run {ctx.run_id} is number {COUNT}", flush=True)
    print(f"stderr of {ctx.run_id}", file=sys.stderr, flush=True)
    ctx.emit("counted", {"count": COUNT, "run": ctx.run_id})
    out = {"count": COUNT, "process": PROCESS, "pid": os.getpid(), "uid": os.getuid()}
    if do == "fail":
        raise RuntimeError("failing on purpose")
    if do == "crash":
        os._exit(3)
    if do == "bad-output":
        return {"no": "count"}
    if do == "wait":  # until cancelled, or for `seconds`
        deadline = time.monotonic() + ctx.input.get("seconds", 60)
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.05)
        return {**out, "cancelled": ctx.cancelled}
    if do == "burn":  # CPU time, in ms
        until = time.process_time() + ctx.input["cpu_ms"] / 1000
        while time.process_time() < until:
            pass
        return out
    if do == "look":
        previous = attempt(lambda: open("/tmp/left-by-a-run").read())
        with open("/tmp/left-by-a-run", "w") as f:
            f.write(ctx.run_id)
        return {
            **out,
            "previous": previous,
            "visible pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            "secret": attempt(lambda: open(ctx.input["secret_path"], "rb").read()),
        }
    return out
