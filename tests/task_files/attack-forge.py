"""An attacker's task: writes a result early, then runs past its timeout."""

import os
import time

from runs.definitions import task


@task(name="Attack: forged result", timeout_seconds=1)
def run(ctx):
    os.write(3, b'{"t": "result", "ok": true, "output": {"forged": true}, "error": null}\n')
    while True:
        time.sleep(0.1)
