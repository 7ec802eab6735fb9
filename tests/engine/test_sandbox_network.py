"""Studio as an ordinary (non-root) user: runs reach the outside, never the host's loopback.

A real fork server runs as uid 65534 (tests/engine/forkserver_driver.py drops to it, with no
capability left; only its mount namespace differs, so that it can reach an interpreter under
/root). It enters a user + network namespace of its own with slirp4netns attached
(runs/process/netns.py) and forks real sandboxed runs of tests/task_files/reach.py.

"The outside" here is a network namespace this test makes, joined to the host by a veth pair:
for a run it is a host elsewhere on the network, reached the way any outside address is
(through slirp4netns and the host's routing). There is no internet here to try instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from runs.process import netns, sandbox
from tests.workers import ROOT, TEST_TASKS

NOBODY = 65534

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user"),
    pytest.mark.skipif(
        sandbox.probe(sandbox.Policy()) is not None, reason="this kernel cannot sandbox runs"
    ),
]

LISTENER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print("listening", flush=True)
for _ in range(50):
    conn, _ = s.accept()
    conn.sendall(b"hello from outside")
    conn.close()
"""


def run_as_nobody(runs: list[dict], mode: str = "required") -> tuple[dict, str]:
    spec = {"tasks_dir": str(TEST_TASKS), "mode": mode, "runs": runs}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.engine.forkserver_driver", "--as", str(NOBODY)]
        + [json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


@pytest.fixture
def outside():
    """A listener on another host: a network namespace of its own, behind a veth pair."""
    tag = f"{os.getpid() % 10000}"
    name, host_if, peer_if = f"studio-out-{tag}", f"sto{tag}h", f"sto{tag}p"
    octet = 16 + os.getpid() % 200
    here, there = f"10.213.{octet}.1", f"10.213.{octet}.2"

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", name)
    listener = None
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if, "netns", name)
        ip("addr", "add", f"{here}/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", name, "addr", "add", f"{there}/30", "dev", peer_if)
        ip("-n", name, "link", "set", peer_if, "up")
        listener = subprocess.Popen(
            ["ip", "netns", "exec", name, sys.executable, "-c", LISTENER, there, "8133"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert listener.stdout.readline().strip() == "listening"
        yield there, 8133
    finally:
        if listener is not None:
            listener.kill()
            listener.wait(10)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def host_service():
    """Stands in for Studio's web server, bound to every address of the host (0.0.0.0)."""
    with socket.socket() as web:
        web.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        web.bind(("0.0.0.0", 8134))
        web.listen(16)
        yield 8134


@pytest.mark.skipif(shutil.which("slirp4netns") is None, reason="slirp4netns is not installed")
def test_a_non_root_studios_runs_reach_the_outside_but_not_the_host(outside, host_service):
    host_addresses = netns.host_addresses()
    assert host_addresses, "the host has no address besides the loopback"
    targets = [("127.0.0.1", 5432), ("127.0.0.1", 6379), ("127.0.0.1", host_service)]
    targets += [(address, host_service) for address in host_addresses]
    # Studio's side (the host itself) reaches every one of them.
    for host, port in [*targets, outside]:
        socket.create_connection((host, port), timeout=3).close()
    targets += [("10.0.2.2", 5432), outside]  # slirp4netns's gateway: the host's loopback

    found, log = run_as_nobody(
        [
            {"task_id": "reach", "input": {"addresses": targets}},
            {"task_id": "offline", "input": {"port": host_service}},
        ]
    )
    assert found["uid"] == NOBODY
    assert "runs are sandboxed" in log and "not the host's loopback" in log, log
    [reach, offline] = found["runs"]
    assert reach["result"]["ok"], reach
    output = reach["result"]["output"]
    for host, port in targets[:-1]:
        assert output[f"{host}:{port}"].startswith("denied"), (host, port, output)
    assert output[f"{outside[0]}:{outside[1]}"] == "CONNECTED: hello from outside", output
    assert offline["result"]["output"].startswith("denied"), offline


def test_required_refuses_a_non_root_studio_without_user_mode_networking(tmp_path):
    """No slirp4netns on the PATH: `required` refuses to start, `auto` warns and runs."""
    bin_dir = tmp_path / "bin"  # a PATH with what the fork server needs, minus slirp4netns
    bin_dir.mkdir()
    os.chmod(tmp_path, 0o755)
    spec = {"tasks_dir": str(TEST_TASKS), "mode": "required", "runs": []}
    env = {**os.environ, "PATH": str(bin_dir)}
    command = [sys.executable, "-m", "tests.engine.forkserver_driver", "--as", str(NOBODY)]
    refused = subprocess.run(
        [*command, json.dumps({**spec, "runs": [{"task_id": "echo", "input": {}}]})],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "STUDIO_SANDBOX=required but slirp4netns is not installed" in refused.stderr

    spec = {**spec, "mode": "auto", "runs": [{"task_id": "echo", "input": {"lines": ["x"]}}]}
    warned = subprocess.run(
        [*command, json.dumps(spec)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert warned.returncode == 0, warned.stderr
    assert "WARNING: host loopback NOT blocked: slirp4netns is not installed" in warned.stderr
    [run] = json.loads(warned.stdout)["runs"]
    assert run["result"]["ok"], run
