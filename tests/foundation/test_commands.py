"""createproject, createtoken and bootstrap: output a script can capture, and idempotent setup."""

from __future__ import annotations

import re
import uuid
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from runs.models import ApiToken, Membership, Project

pytestmark = pytest.mark.django_db


def run_command(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def test_createproject_prints_only_the_new_projects_id():
    out = run_command("createproject", "billing", "--name", "Billing team")

    project = Project.objects.get(slug="billing")
    assert out == f"{project.pk}\n"
    assert uuid.UUID(out.strip()) == project.pk
    assert project.name == "Billing team"


def test_createproject_names_the_project_after_its_slug_by_default():
    run_command("createproject", "billing")

    assert Project.objects.get(slug="billing").name == "billing"


def test_createproject_rejects_a_duplicate_slug(project):
    with pytest.raises(CommandError, match="slug 'acme' already exists"):
        run_command("createproject", "acme")

    assert Project.objects.filter(slug="acme").count() == 1


@pytest.mark.parametrize("slug", ["has space", "semi;colon", "ünïcode", ""])
def test_createproject_rejects_a_bad_slug(slug):
    with pytest.raises(CommandError, match="is not a valid slug"):
        run_command("createproject", slug)

    assert not Project.objects.exists()


def test_createproject_rejects_a_slug_that_is_too_long():
    with pytest.raises(CommandError, match="at most 64 characters"):
        run_command("createproject", "a" * 65)

    assert not Project.objects.exists()


def test_createtoken_prints_only_a_token_that_authenticates(project):
    out = run_command("createtoken", "acme", "--name", "deploy")

    secret = out.strip()
    assert out == f"{secret}\n"
    assert re.fullmatch(r"stu_\S+", secret)
    token = ApiToken.objects.authenticate(secret)
    assert (token.project, token.name, token.scope) == (project, "deploy", "read_write")


def test_createtoken_accepts_the_project_id(project):
    secret = run_command("createtoken", str(project.pk)).strip()

    assert ApiToken.objects.authenticate(secret).project == project


def test_createtoken_read_only_gives_a_read_scope(project):
    secret = run_command("createtoken", "acme", "--read-only").strip()

    token = ApiToken.objects.authenticate(secret)
    assert token.scope == "read"
    assert not token.can_write


def test_createtoken_rejects_an_unknown_project(project):
    with pytest.raises(CommandError, match="No project 'acme-typo'"):
        run_command("createtoken", "acme-typo")

    assert not ApiToken.objects.exists()


def test_createtoken_rejects_a_name_that_is_too_long(project):
    with pytest.raises(CommandError, match="at most 100 characters"):
        run_command("createtoken", "acme", "--name", "n" * 101)

    assert not ApiToken.objects.exists()


def test_bootstrap_creates_the_default_project_and_an_admin_with_a_printed_password(
    monkeypatch,
):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)

    out = run_command("bootstrap")

    project = Project.objects.get(slug="default")
    password = re.search(r"password: (\S+)", out).group(1)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(password)
    assert Membership.objects.get(user=admin, project=project).role == "admin"


def test_bootstrap_is_idempotent_and_prints_the_password_only_once(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    first = run_command("bootstrap")
    password = re.search(r"password: (\S+)", first).group(1)

    second = run_command("bootstrap")

    assert "password" not in second
    assert password not in second
    assert Project.objects.filter(slug="default").count() == 1
    assert get_user_model().objects.count() == 1
    assert get_user_model().objects.get().check_password(password)


def test_bootstrap_uses_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "correct-horse-battery")
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")

    out = run_command("bootstrap")

    assert "correct-horse-battery" not in out
    assert "DJANGO_SUPERUSER_PASSWORD" in out
    assert get_user_model().objects.get(username="ops").check_password("correct-horse-battery")


def test_bootstrap_keeps_an_existing_project_and_admin(project, django_user_model, monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    django_user_model.objects.create_superuser("admin", "", "kept-password")
    Project.objects.create(slug="default", name="Renamed by an operator")

    out = run_command("bootstrap")

    assert out == ""
    assert Project.objects.get(slug="default").name == "Renamed by an operator"
    assert django_user_model.objects.get(username="admin").check_password("kept-password")


def test_createproject_rejects_a_slug_that_reads_as_a_project_id():
    lookalike = "deadbeefdeadbeefdeadbeefdeadbeef"

    with pytest.raises(CommandError, match="looks like a project id"):
        run_command("createproject", lookalike)

    assert not Project.objects.exists()
