"""var/ and what is in it (secret key, SQLite database, queue) are readable by Studio's user
only, however permissive the umask, on a fresh start and for files left by older versions."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.foundation.helpers import ROOT, subprocess_env

# Start Studio with a umask that would leave everything world-readable, write to the database
# and the queue (so SQLite makes its -wal/-shm files), and report the modes.
PROBE = """
import json
import os
os.umask(0)
import django
django.setup()
from django.db import connection
from huey.contrib.djhuey import HUEY
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS probe (x integer)")
    cursor.execute("INSERT INTO probe VALUES (1)")
HUEY.storage.enqueue(b"x")
# While the connections are open, so SQLite's -wal and -shm files are there to be seen.
var = os.environ["STUDIO_VAR_DIR"]
modes = {n: os.stat(os.path.join(var, n)).st_mode & 0o7777 for n in os.listdir(var)}
print(json.dumps(modes))
"""


def start(var: Path) -> dict[str, int]:
    """Start Studio on `var`; the modes of what is in var/ while it runs."""
    env = subprocess_env(var.parent, STUDIO_VAR_DIR=str(var))
    del env["DATABASE_URL"]  # the default: SQLite in var/
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={k: v for k, v in env.items() if k != "SECRET_KEY"},  # generated into var/
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(var: Path) -> dict[str, int]:
    return {p.name: mode(p) for p in var.iterdir() if p.is_file()}


def test_a_fresh_var_is_private(tmp_path):
    var = tmp_path / "var"
    running = start(var)
    assert mode(var) == 0o700
    wanted = {"secret_key", "studio.sqlite3", "studio.sqlite3-wal", "studio.sqlite3-shm"}
    assert wanted | {"huey.sqlite3"} <= set(running)
    files = {name: m for name, m in running.items() if name != "staticfiles"}  # public assets
    assert files == dict.fromkeys(files, 0o600), {k: oct(v) for k, v in files.items()}


def test_a_var_left_readable_is_made_private_at_start_up(tmp_path):
    var = tmp_path / "var"
    start(var)
    var.chmod(0o755)
    for path in var.iterdir():
        if path.is_file():
            path.chmod(0o644)
    start(var)
    assert mode(var) == 0o700
    files = modes(var)
    assert files == dict.fromkeys(files, 0o600), {k: oct(v) for k, v in files.items()}


def test_a_shared_sticky_directory_is_left_alone(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    start(shared)
    assert mode(shared) == 0o1777  # like /tmp: others' files live there too
    assert mode(shared / "secret_key") == 0o600
    assert os.stat(shared / "studio.sqlite3").st_mode & 0o077 == 0
