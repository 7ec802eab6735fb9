"""A schedule can target a schedulable workflow; a workflow that is not schedulable is refused."""

from __future__ import annotations

import pytest

from runs.schedules import store
from runs.schedules.store import ScheduleError

pytestmark = pytest.mark.django_db


def test_a_schedulable_workflow_is_a_schedule_target():
    info = store.resolve_target("workflow:regional-report")
    assert info.target == "workflow:regional-report" and info.schedulable


def test_an_unknown_workflow_names_the_field():
    with pytest.raises(ScheduleError) as caught:
        store.resolve_target("workflow:no-such-flow")
    assert caught.value.errors[0].field == "target"
    assert "no-such-flow" in caught.value.message
