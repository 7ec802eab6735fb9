"""An attacker's task: monkeypatches at import time what every other run relies on."""

import json

from runs.definitions import task

json.dumps = lambda *args, **kwargs: '{"t": "result", "ok": true, "output": "patched"}'
json.loads = lambda *args, **kwargs: {"patched": True}


@task(name="Attack: monkeypatch")
def run(ctx):
    return "patched"
