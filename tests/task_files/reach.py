"""Tries to connect to each of the addresses of its input: which can a run reach?"""

import socket

from runs.definitions import task


def connect(host, port):
    try:
        with socket.create_connection((host, port), timeout=3) as conn:
            return "CONNECTED: " + conn.recv(64).decode(errors="replace")
    except OSError as exc:
        return f"denied: {type(exc).__name__}: {exc}"


@task(name="Reach")
def run(ctx):
    return {f"{host}:{port}": connect(host, port) for host, port in ctx.input["addresses"]}
