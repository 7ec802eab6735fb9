"""Writes what a database will not store, and junk into Studio's own event pipe."""

import os
import sys

from runs.definitions import task


@task(name="Garbage")
def run(ctx):
    sys.stdout.write("nul \x00 byte\n")
    sys.stdout.flush()
    os.write(3, b"1\n")  # not an object
    os.write(3, b'{"t": "event", "type": "' + b"x" * 150 + b'", "payload": {}}\n')  # type too long
    os.write(
        3, b'{"t": "event", "type": "run.completed", "payload": {"forged": true}}\n'
    )  # reserved
    ctx.emit("with.nul", {"text": "a\x00b"})
    return {"nul": "x\x00y"}
