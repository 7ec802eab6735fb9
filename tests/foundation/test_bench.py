"""`manage.py bench`: sections chosen with --only, and the dashboard section on a small seed."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from runs.bench import SECTIONS, dashboard
from runs.management.commands import bench


def test_only_takes_one_section_or_several():
    assert bench._sections("dashboard") == ("dashboard",)
    assert bench._sections("latency, throughput,latency") == ("latency", "throughput")
    assert set(SECTIONS) == {
        "latency",
        "throughput",
        "logs",
        "workflows",
        "scheduler",
        "dashboard",
        "api",
    }


@pytest.mark.parametrize("value", ["nope", "", "latency,nope"])
def test_an_unknown_section_is_refused_before_anything_runs(value, monkeypatch):
    monkeypatch.setattr(bench, "scratch_env", None)  # would fail loudly if reached
    with pytest.raises(CommandError, match="--only"):
        call_command("bench", "--only", value)


@pytest.mark.django_db
def test_the_dashboard_section_times_every_view(capsys):
    dashboard.measure(n_runs=60, n_events=120, repeat=1)
    out = capsys.readouterr().out
    assert "seeded 60 runs and 120 events" in out
    for view in ("runs list, page 2 (keyset)", "run detail (100k events)", "event poll, quiet run"):
        assert view in out
