"""The SDK's retries, against a scripted HTTP server on the loopback interface."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runs.client import RunsClient, RunsError

RUN = {
    "run_id": "run_" + "a" * 32,
    "kind": "task",
    "status": "pending",
    "owner": {"kind": "project", "id": "00000000-0000-0000-0000-000000000001"},
    "root_run_id": "run_" + "a" * 32,
    "artifacts": [],
    "created_at": "2024-05-01T12:00:00.000Z",
    "updated_at": "2024-05-01T12:00:00.000Z",
}


class ScriptedServer:
    """Answers requests with the given (status, body, headers) in turn; records what it got."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "body": json.loads(body) if body else None,
                    }
                )
                status, payload, headers = server.answers.pop(0)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def busy(status=503, headers=None):
    return (
        status,
        {"error": {"message": "busy", "code": "unavailable", "detail": None}},
        headers or {},
    )


def client(url, delays):
    return RunsClient(url, "stu_test_token_value", "acme", sleep=delays.append)


def test_it_retries_a_5xx_and_returns_the_answer_that_follows():
    delays = []
    with ScriptedServer([busy(503), (200, RUN, {})]) as server:
        run = client(server.url, delays).get(RUN["run_id"])
    assert run.run_id == RUN["run_id"]
    assert len(server.requests) == 2
    assert delays == [1.0]


def test_it_gives_up_after_three_retries_doubling_the_wait():
    delays = []
    with ScriptedServer([busy(502), busy(503), busy(500), busy(504)]) as server:
        with pytest.raises(RunsError) as caught:
            client(server.url, delays).get(RUN["run_id"])
    assert len(server.requests) == 4
    assert delays == [1.0, 2.0, 4.0]
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        504,
        "unavailable",
        "busy",
    )


def test_the_wait_between_retries_stops_growing_at_ten_seconds():
    delays = []
    with ScriptedServer([busy()] * 6 + [(200, RUN, {})]) as server:
        RunsClient(server.url, "stu_x" * 5, max_retries=6, sleep=delays.append).get(RUN["run_id"])
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_it_retries_429_honouring_retry_after():
    delays = []
    with ScriptedServer([busy(429, {"Retry-After": "3"}), (200, RUN, {})]) as server:
        client(server.url, delays).get(RUN["run_id"])
    assert delays == [3.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_it_never_retries_other_4xx(status):
    delays = []
    answer = (status, {"error": {"message": "no", "code": "nope", "detail": None}}, {})
    with ScriptedServer([answer, (200, RUN, {})]) as server:
        with pytest.raises(RunsError) as caught:
            client(server.url, delays).get(RUN["run_id"])
    assert caught.value.status == status
    assert len(server.requests) == 1 and delays == []


def test_a_retried_create_carries_the_same_idempotency_key():
    delays = []
    accepted = {"accepted": True, "duplicate": True, "run": RUN}
    with ScriptedServer([busy(503), (202, accepted, {})]) as server:
        result = client(server.url, delays).create_task_run(
            project_id=RUN["owner"]["id"], target="task:sync-data"
        )
    first, second = (r["body"] for r in server.requests)
    assert first == second
    assert first["public_id"]
    # The server saw our own retry as a duplicate; the caller asked once.
    assert result.duplicate is False


def test_a_rerun_is_not_repeated_after_a_5xx():
    delays = []
    with ScriptedServer([busy(500), (202, {"accepted": True, "run": RUN}, {})]) as server:
        with pytest.raises(RunsError):
            client(server.url, delays).rerun(RUN["run_id"])
    assert len(server.requests) == 1


def test_it_retries_when_the_server_cannot_be_reached():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the client connects
    delays = []
    with pytest.raises(RunsError) as caught:
        client(f"http://127.0.0.1:{port}/api", delays).get(RUN["run_id"])
    assert caught.value.status is None and caught.value.code == "network_error"
    assert delays == [1.0, 2.0, 4.0]


def test_an_error_without_the_error_shape_still_raises_a_typed_error():
    delays = []
    with ScriptedServer([(404, ["unexpected"], {})]) as server:
        with pytest.raises(RunsError) as caught:
            client(server.url, delays).get(RUN["run_id"])
    assert caught.value.status == 404
