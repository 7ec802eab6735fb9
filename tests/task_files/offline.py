"""A task without network: even the loopback of its own is gone."""

import socket

from runs.definitions import task


@task(name="Offline", network=False)
def run(ctx):
    try:
        with socket.create_connection(("127.0.0.1", ctx.input["port"]), timeout=2):
            return "CONNECTED"
    except OSError as exc:
        return f"denied: {type(exc).__name__}: {exc}"
