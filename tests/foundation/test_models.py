"""The data model: run ids, API tokens stored as prefix + hash, idempotency keys, project refs."""

from __future__ import annotations

import re
import uuid

import pytest
from django.db import IntegrityError, transaction

from runs.models import ApiToken, Project, Run, RunEvent

pytestmark = pytest.mark.django_db


def test_run_ids_are_run_and_32_hex_digits(project):
    first = Run.objects.create(project=project, target="task:sync-data")
    second = Run.objects.create(project=project, target="task:sync-data")

    assert re.fullmatch(r"run_[0-9a-f]{32}", first.id)
    assert re.fullmatch(r"run_[0-9a-f]{32}", second.id)
    assert first.id != second.id


def test_a_new_run_starts_pending_as_a_manual_task_run(project):
    run = Run.objects.create(project=project, target="task:sync-data")

    assert (run.status, run.kind, run.trigger_kind) == ("pending", "task", "manual")
    assert run.task_id == "sync-data"
    assert not run.is_terminal


def test_event_ids_increase_in_order_of_creation(project):
    run = Run.objects.create(project=project, target="task:sync-data")
    events = [RunEvent.objects.create(run=run, event_type="log") for _ in range(3)]

    assert [e.id for e in run.events.all()] == sorted(e.id for e in events)
    assert events[0].id < events[1].id < events[2].id


def test_an_issued_token_is_stored_only_as_prefix_and_hash(project):
    token, secret = ApiToken.issue(project, "ci")

    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert secret.startswith("stu_")
    assert row["prefix"] == secret[: len(row["prefix"])]
    assert row["secret_hash"] and row["secret_hash"] != secret
    assert not [name for name, value in row.items() if secret in str(value)]


def test_a_token_authenticates_with_its_secret(project):
    token, secret = ApiToken.issue(project, "ci")

    found = ApiToken.objects.authenticate(secret)

    assert found == token
    assert found.project == project
    assert found.can_write


def test_a_read_only_token_cannot_write(project):
    _, secret = ApiToken.issue(project, "reader", read_only=True)

    found = ApiToken.objects.authenticate(secret)

    assert found.scope == ApiToken.Scope.READ
    assert not found.can_write


def test_a_wrong_secret_with_a_real_prefix_is_rejected(project):
    _, secret = ApiToken.issue(project, "ci")
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")

    assert ApiToken.objects.authenticate(wrong) is None
    assert ApiToken.objects.authenticate(secret + "x") is None


def test_a_revoked_token_is_rejected(project):
    token, secret = ApiToken.issue(project, "ci")

    token.revoke()

    assert token.revoked_at is not None
    assert ApiToken.objects.authenticate(secret) is None


@pytest.mark.parametrize(
    "malformed", ["", "stu_", "stu_short", "garbage-token-without-prefix", "Bearer stu_"]
)
def test_a_malformed_token_is_rejected(project, malformed):
    ApiToken.issue(project, "ci")

    assert ApiToken.objects.authenticate(malformed) is None


def test_a_token_with_another_tokens_prefix_is_rejected(project, other_project):
    _, mine = ApiToken.issue(project, "mine")
    _, theirs = ApiToken.issue(other_project, "theirs")

    forged = mine[:12] + theirs[12:]

    assert ApiToken.objects.authenticate(forged) is None


def test_public_id_is_unique_within_a_project(project):
    Run.objects.create(project=project, target="task:sync-data", public_id="order-42")

    with pytest.raises(IntegrityError), transaction.atomic():
        Run.objects.create(project=project, target="task:sync-data", public_id="order-42")


def test_public_id_may_repeat_across_projects_and_be_left_empty(project, other_project):
    Run.objects.create(project=project, target="task:sync-data", public_id="order-42")
    Run.objects.create(project=other_project, target="task:sync-data", public_id="order-42")
    Run.objects.create(project=project, target="task:sync-data")
    Run.objects.create(project=project, target="task:sync-data")

    assert Run.objects.filter(public_id="order-42").count() == 2
    assert Run.objects.filter(project=project, public_id__isnull=True).count() == 2


def test_a_project_is_found_by_slug_or_by_id(project, other_project):
    assert list(Project.by_reference("acme")) == [project]
    assert list(Project.by_reference(str(project.pk))) == [project]
    assert list(Project.by_reference(str(project.pk).upper())) == [project]


def test_an_unknown_project_reference_finds_nothing(project):
    assert not Project.by_reference("nope").exists()
    assert not Project.by_reference(str(uuid.uuid4())).exists()


def test_project_ids_are_uuids(project):
    assert isinstance(project.pk, uuid.UUID)
