"""Configuration from the environment: bad values stop start-up and name the variable."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from studio.settings import BASE_DIR, database_from_url, env_bool, env_number
from tests.foundation.helpers import ROOT, subprocess_env

SETUP = "import django; django.setup()"


def start(tmp_path, code: str = SETUP, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=subprocess_env(tmp_path, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_starts_with_good_values(tmp_path):
    code = SETUP + (
        "; from django.conf import settings as s; import json;"
        " print(json.dumps([s.DEBUG, s.STUDIO_WORKERS, s.DATABASES['default']['ENGINE'],"
        " s.HUEY['huey_class']]))"
    )

    result = start(
        tmp_path,
        code,
        DEBUG="on",
        STUDIO_WORKERS="3",
        DATABASE_URL="postgres://studio:pw@127.0.0.1:5432/studio",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        True,
        3,
        "django.db.backends.postgresql",
        "studio.queue_signing.StudioRedisHuey",
    ]


@pytest.mark.parametrize(
    "name, value, complaint",
    [
        ("DEBUG", "yes", "is not a boolean"),
        ("DEBUG", "maybe", "is not a boolean"),
        ("STUDIO_WORKERS", "abc", "is not an integer"),
        ("STUDIO_WORKERS", "0", "must be at least 1"),
        ("STUDIO_HEARTBEAT_SECONDS", "fast", "is not a number"),
        ("STUDIO_MAX_BODY_BYTES", "10", "must be at least 1024"),
        ("DATABASE_URL", "mysql://x", "unsupported scheme 'mysql'"),
        ("DATABASE_URL", "postgres://127.0.0.1:5432/", "names no database"),
        ("DATABASE_URL", "sqlite://", "names no SQLite file"),
        ("REDIS_URL", "http://x", "must start with redis://"),
        ("STUDIO_LOG_LEVEL", "LOUD", "is not one of DEBUG, INFO"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path, name, value, complaint):
    result = start(tmp_path, **{name: value})

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"django.core.exceptions.ImproperlyConfigured: {name}=")
    assert complaint in last_line


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_number_that_is_not_finite_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("STUDIO_RETRY_BASE_SECONDS", value)

    with pytest.raises(ImproperlyConfigured, match="STUDIO_RETRY_BASE_SECONDS="):
        env_number("STUDIO_RETRY_BASE_SECONDS", 2.0)


def test_serve_refuses_a_port_that_is_not_a_number_naming_the_variable(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "serve", "--no-worker"],
        cwd=ROOT,
        env=subprocess_env(tmp_path, PORT="http"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stderr == "CommandError: PORT='http' is not a TCP port number (1-65535)\n"


@pytest.mark.parametrize("port", ["0", "70000", "-1"])
def test_serve_refuses_a_port_out_of_range_before_starting_anything(monkeypatch, port):
    monkeypatch.setenv("PORT", port)
    started = []
    monkeypatch.setattr("subprocess.Popen", lambda *a, **kw: started.append(a))

    with pytest.raises(CommandError, match=f"PORT='{port}' is not a TCP port number"):
        call_command("serve", "--no-worker")

    assert started == []


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "on"])
def test_env_bool_reads_true(monkeypatch, raw):
    monkeypatch.setenv("STUDIO_FLAG", raw)

    assert env_bool("STUDIO_FLAG", False) is True


@pytest.mark.parametrize("raw", ["0", "false", "Off"])
def test_env_bool_reads_false(monkeypatch, raw):
    monkeypatch.setenv("STUDIO_FLAG", raw)

    assert env_bool("STUDIO_FLAG", True) is False


def test_env_bool_uses_the_default_when_unset_or_empty(monkeypatch):
    monkeypatch.delenv("STUDIO_FLAG", raising=False)
    assert env_bool("STUDIO_FLAG", True) is True

    monkeypatch.setenv("STUDIO_FLAG", "")
    assert env_bool("STUDIO_FLAG", False) is False


def test_env_bool_rejects_yes_naming_the_variable(monkeypatch):
    monkeypatch.setenv("STUDIO_FLAG", "yes")

    with pytest.raises(ImproperlyConfigured, match="STUDIO_FLAG='yes'"):
        env_bool("STUDIO_FLAG", False)


def test_a_postgres_url_parses_into_connection_settings():
    db = database_from_url("postgres://studio:p%40ss@db.internal:6543/runs?sslmode=require")

    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("runs", "studio", "p@ss")
    assert (db["HOST"], db["PORT"]) == ("db.internal", "6543")
    assert db["OPTIONS"] == {
        "sslmode": "require",
        "server_side_binding": True,
        "prepare_threshold": 5,
    }


def test_prepared_statements_can_be_turned_off_for_a_pooler(monkeypatch):
    monkeypatch.setenv("STUDIO_DB_PREPARED_STATEMENTS", "false")

    db = database_from_url("postgres://studio@db/runs?sslmode=require")

    assert db["OPTIONS"] == {"sslmode": "require"}


def test_a_postgresql_url_without_port_or_password_parses():
    db = database_from_url("postgresql://postgres@127.0.0.1/studio")

    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "studio",
        "postgres",
        "",
        "127.0.0.1",
        "",
    )


def test_an_absolute_sqlite_url_parses_with_wal(tmp_path):
    db = database_from_url(f"sqlite:///{tmp_path / 'data' / 'studio.sqlite3'}")

    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(tmp_path / "data" / "studio.sqlite3")
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]


def test_a_relative_sqlite_url_is_relative_to_the_project():
    db = database_from_url("sqlite:///var/studio.sqlite3")

    assert db["NAME"] == str(BASE_DIR / "var" / "studio.sqlite3")
