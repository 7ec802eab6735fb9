"""Shared fixtures. Feature folders (tests/api, tests/dashboard, tests/engine, ...) add their own."""

from __future__ import annotations

import pytest

from runs.models import Project


@pytest.fixture
def project(db) -> Project:
    return Project.objects.create(slug="acme", name="Acme")


@pytest.fixture
def other_project(db) -> Project:
    return Project.objects.create(slug="outsider", name="Outsider Inc")
