"""An attacker's task: tries Studio's services on the host's loopback."""

import socket

from runs.definitions import task


def connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return "CONNECTED"
    except OSError as exc:
        return f"denied: {type(exc).__name__}: {exc}"


@task(name="Attack: loopback")
def run(ctx):
    return {str(port): connect(port) for port in ctx.input["ports"]}
