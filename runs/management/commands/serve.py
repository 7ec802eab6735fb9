"""`manage.py serve`: Studio in one command: the web server (UI, API, admin) and a worker.

Both run as child processes of this one; if either stops, the other is stopped too, and
SIGINT/SIGTERM shut both down cleanly (the worker drains first). Nothing reads the terminal,
so it can run in the background from a script.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runs.metrics import multiprocess_dir
from runs.process.child import die_with_parent

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


def drained_with_parent() -> None:
    # If serve itself is killed (even with SIGKILL), its children get SIGTERM and shut down
    # cleanly instead of running on as orphans. (serve is single-threaded: preexec_fn is safe.)
    die_with_parent(signal.SIGTERM)


class Command(BaseCommand):
    help = "Serve Studio (web server + embedded worker) until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=None, help="default: $PORT or 8000")
        parser.add_argument(
            "--no-worker", action="store_true", help="serve the web only (workers run elsewhere)"
        )
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")

    def handle(self, *args, host, port, no_worker, web_workers, **options):
        raw_port = port if port is not None else os.environ.get("PORT", "8000")
        try:
            port = int(raw_port)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            raise CommandError(f"PORT={raw_port!r} is not a TCP port number (1-65535)") from None
        children: dict[str, subprocess.Popen] = {}
        stopping = False

        def shut_down(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, shut_down)
        signal.signal(signal.SIGINT, shut_down)
        # The web workers and the worker count into one folder that /metrics adds up; counters
        # start from zero with the service.
        multiprocess_dir(settings.VAR_DIR, clean=True)

        if not no_worker:
            children["worker"] = subprocess.Popen(
                [sys.executable, MANAGE, "run_huey", "--skip-checks"],
                stdin=subprocess.DEVNULL,
                preexec_fn=drained_with_parent,
                start_new_session=True,  # Ctrl+C reaches serve only; serve drains them
            )
        children["web"] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "studio.wsgi:application",
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(web_workers),
                "--worker-class",
                "gthread",
                "--threads",
                "8",
                "--graceful-timeout",
                "10",
                "--access-logfile",
                "-",
                "--access-logformat",
                '%(t)s "%(r)s" %(s)s %(b)s %(M)sms',
            ],
            cwd=settings.BASE_DIR,
            stdin=subprocess.DEVNULL,
            preexec_fn=drained_with_parent,
            start_new_session=True,  # Ctrl+C reaches serve only; serve drains them
        )
        url = f"http://{host}:{port}"
        self.stdout.write(
            f"\nStudio is starting at {url}\n"
            f"  dashboard  {url}/\n  API docs   {url}/api/docs\n  admin      {url}/admin/\n"
            + (
                "  worker     embedded (stops with the server)\n"
                if not no_worker
                else "  worker     none here\n"
            )
            + "Press Ctrl+C to stop.\n"
        )
        self.stdout.flush()

        exit_code = 0
        while not stopping:
            for name, proc in children.items():
                if proc.poll() is not None:
                    self.stderr.write(f"{name} exited with code {proc.returncode}; stopping Studio")
                    exit_code = proc.returncode or 1
                    stopping = True
                    break
            else:
                time.sleep(0.2)

        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + settings.STUDIO_SHUTDOWN_GRACE_SECONDS + 15
        for proc in children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        if exit_code:
            sys.exit(exit_code)
