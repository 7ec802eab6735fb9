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


def test_targets_are_judged_on_the_median_of_the_invocations(tmp_path, monkeypatch):
    """Each invocation's figures are recorded by the measuring child and read back; a ratio is
    taken within each invocation, and the verdict follows the median, not the best draw."""
    from runs.bench import summary

    files = []
    for throughput, p50 in ((30.0, 7.0), (20.0, 9.5), (28.0, 7.5)):
        path = tmp_path / f"{len(files)}.json"
        monkeypatch.setenv(summary.RESULTS_ENV, str(path))
        summary.record({"raw_throughput": 100.0, "studio_throughput": throughput})
        summary.record({"studio_completed_p50": p50, "studio_lines_status": "completed"})
        files.append(summary.read(str(path)))
    assert files[0] == {
        "raw_throughput": 100.0,
        "studio_throughput": 30.0,
        "studio_completed_p50": 7.0,
    }
    lines: list[str] = []
    summary.report(lines.append, files)
    text = "\n".join(lines)
    assert "median of 3 invocations" in text
    throughput = next(line for line in lines if line.startswith("throughput, x raw Huey"))
    assert "0.280x" in throughput and "(0.300 / 0.200 / 0.280)" in throughput
    assert throughput.endswith("target >= 0.25x: met")
    p50 = next(line for line in lines if line.startswith("create -> completed p50"))
    assert "7.50 ms" in p50 and p50.endswith("target < 8 ms: met")
    assert "GET /api/runs" not in text  # not measured: not judged


def test_a_target_missed_by_the_median_says_so():
    from runs.bench import summary

    lines: list[str] = []
    summary.report(lines.append, [{"studio_lines_seconds": v} for v in (0.9, 1.2, 1.1)])
    (line,) = [line for line in lines if line.startswith("100,000 log lines")]
    assert "1.10 s" in line and line.endswith("target < 1 s: NOT met")


def test_the_reuse_process_target_is_a_ratio_to_the_same_invocations_raw_huey_and_optional():
    from runs.bench import summary

    figures = [
        {"raw_throughput": 1000.0, "studio_reuse_throughput": v} for v in (450.0, 600.0, 520.0)
    ]
    lines: list[str] = []
    summary.report(lines.append, figures)
    (line,) = [line for line in lines if line.startswith("throughput, reuse_process, x raw Huey")]
    assert "0.520x" in line and "(0.450 / 0.600 / 0.520)" in line
    assert line.endswith("target >= 0.5x (optional): met")
