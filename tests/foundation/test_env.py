"""The environment a task sees: the process's, minus Studio's own settings and secrets."""

from __future__ import annotations

from runs.definitions import LocalContext, TaskRegistry, filtered_env
from runs.process.runner import execute
from tests.foundation.helpers import write_task

ENVIRON = {
    "PATH": "/usr/bin",
    "HOME": "/home/studio",
    "API_TOKEN": "partner-token",
    "SECRET_KEY": "django-secret",
    "DATABASE_URL": "postgres://studio:pw@db/studio",
    "REDIS_URL": "redis://cache:6379/0",
    "STUDIO_TASKS_DIR": "/srv/tasks",
    "STUDIO_WORKERS": "8",
    "DJANGO_SETTINGS_MODULE": "studio.settings",
    "DJANGO_SUPERUSER_PASSWORD": "hunter2",
}


def test_it_hides_studios_settings_and_secrets():
    env = filtered_env(environ=ENVIRON)

    assert env == {"PATH": "/usr/bin", "HOME": "/home/studio", "API_TOKEN": "partner-token"}


def test_it_keeps_only_the_allowlisted_names():
    env = filtered_env(("API_TOKEN", "PATH"), environ=ENVIRON)

    assert env == {"API_TOKEN": "partner-token", "PATH": "/usr/bin"}


def test_it_never_hands_out_a_hidden_name_even_when_allowlisted():
    allowlist = ("API_TOKEN", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "STUDIO_WORKERS")

    env = filtered_env(allowlist + ("DJANGO_SUPERUSER_PASSWORD",), environ=ENVIRON)

    assert env == {"API_TOKEN": "partner-token"}


def test_it_gives_nothing_for_an_empty_allowlist_or_names_that_are_not_set():
    assert filtered_env((), environ=ENVIRON) == {}
    assert filtered_env(("NOT_SET_ANYWHERE",), environ=ENVIRON) == {}


def test_it_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("PARTNER_API_URL", "https://partner.test")
    monkeypatch.setenv("SECRET_KEY", "django-secret")
    monkeypatch.setenv("STUDIO_SOMETHING_NEW", "1")

    env = filtered_env()

    assert env["PARTNER_API_URL"] == "https://partner.test"
    assert "SECRET_KEY" not in env
    assert not [name for name in env if name.startswith(("STUDIO_", "DJANGO_"))]


def test_a_task_sees_its_allowlist_through_ctx_env(tmp_path, monkeypatch):
    monkeypatch.setenv("API_TOKEN", "partner-token")
    monkeypatch.setenv("UNRELATED", "x")
    write_task(
        tmp_path,
        "partner.py",
        """
        from runs.definitions import task

        @task(env_allowlist=["API_TOKEN", "SECRET_KEY"])
        def run(ctx):
            return ctx.env
        """,
    )
    definition = TaskRegistry(tmp_path).discover().get("partner")

    outcome = execute(definition, LocalContext(env=filtered_env(definition.env_allowlist)))

    assert outcome.output == {"API_TOKEN": "partner-token"}
