"""/metrics: the Prometheus text format, `studio_` series only, behind a token or an allow-list;
counters fed by real workers (multiprocess mode), gauges read from the database at scrape time."""

from __future__ import annotations

import ipaddress
import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runs.logs import JSONFormatter, log_context
from runs.models import Run
from runs.service import create_run
from tests.workers import wait_for

TOKEN = "metrics-secret-123"


@pytest.fixture
def metrics_token(settings):
    settings.STUDIO_METRICS_TOKEN = TOKEN
    settings.STUDIO_METRICS_ALLOW = []
    return TOKEN


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.django_db
def test_metrics_need_a_token_or_an_allowed_address(client, settings):
    settings.STUDIO_METRICS_TOKEN = TOKEN
    settings.STUDIO_METRICS_ALLOW = []
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    # The test client comes from 127.0.0.1.
    settings.STUDIO_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 401
    settings.STUDIO_METRICS_ALLOW = [ipaddress.ip_network("10.0.0.0/8")]
    assert client.get("/metrics").status_code == 401
    settings.STUDIO_METRICS_ALLOW = [ipaddress.ip_network("127.0.0.1/32")]
    assert client.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_metrics_ignore_allowed_hosts(client, metrics_token):
    response = client.get(
        "/metrics", HTTP_HOST="10.9.8.7:8000", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )
    assert response.status_code == 200


@pytest.mark.django_db
def test_every_series_is_prefixed_studio(
    client, metrics_token, project, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        create_run(project, target="task:sync-data", input={}, created_by="tests")
    client.get("/healthz")
    samples = scrape(client)
    names = {name for name, _ in samples}
    assert names and all(name.startswith("studio_") for name in names)
    for expected in (
        "studio_runs_active",
        "studio_oldest_pending_run_age_seconds",
        "studio_workers_alive",
        "studio_worker_slots_in_use",
        "studio_runs_created_total",
        "studio_http_requests_total",
    ):
        assert expected in names, expected


@pytest.mark.django_db
def test_gauges_describe_the_database_at_scrape_time(client, metrics_token, project):
    before = scrape(client)
    run = create_run(project, target="task:sync-data", input={}, created_by="tests").run
    Run.objects.filter(pk=run.pk).update(created_at=run.created_at.replace(year=2020))
    after = scrape(client)
    pending_before = value(before, "studio_runs_active", status="pending")
    assert value(after, "studio_runs_active", status="pending") == pending_before + 1
    assert value(after, "studio_oldest_pending_run_age_seconds") > 3600 * 24 * 365
    assert value(after, "studio_runs_active", status="running") == 0


@pytest.mark.django_db
def test_http_requests_are_counted_by_route_not_by_path(client, metrics_token, project):
    route = "/p/<slug:project>/runs/<str:run_id>/"
    before = value(scrape(client), "studio_http_requests_total", route=route, status="302")
    client.get("/p/acme/runs/run_1/")
    client.get("/p/acme/runs/run_2/")
    after = value(scrape(client), "studio_http_requests_total", route=route, status="302")
    assert after == before + 2


@pytest.mark.worker
def test_counters_and_gauges_follow_runs_a_real_worker_completes(
    client, metrics_token, project, start_worker
):
    labels = {"project": "acme", "target": "task:sync-data"}
    before = scrape(client)
    runs = [
        create_run(project, target="task:sync-data", input={"limit": 1}, created_by="t").run
        for _ in range(3)
    ]
    created = scrape(client)
    assert value(created, "studio_runs_created_total", trigger_kind="manual", **labels) == (
        value(before, "studio_runs_created_total", trigger_kind="manual", **labels) + 3
    )
    assert value(created, "studio_runs_active", status="pending") >= 3

    start_worker()
    wait_for(
        lambda: Run.objects.filter(pk__in=[r.pk for r in runs], status="completed").count() == 3,
        30,
        message="three completed runs",
    )
    # Counted in the worker process, added up by this one's /metrics (multiprocess mode).
    done = wait_for(
        lambda: (
            (
                s := scrape(client),
                value(s, "studio_runs_finished_total", status="completed", **labels)
                == value(before, "studio_runs_finished_total", status="completed", **labels) + 3,
            )[1]
            and s
        ),
        10,
        message="finished counter",
    )
    assert value(done, "studio_runs_active", status="pending") == 0
    assert (
        value(done, "studio_run_duration_seconds_count")
        >= value(before, "studio_run_duration_seconds_count") + 3
    )
    assert value(done, "studio_run_queue_wait_seconds_count") >= 3
    assert value(done, "studio_events_written_total") > value(before, "studio_events_written_total")
    assert value(done, "studio_workers_alive") >= 1


def test_json_logs_carry_the_run_context():
    formatter = JSONFormatter()
    record = logging.LogRecord(
        "runs.worker", logging.WARNING, __file__, 1, "hello %s", ("x",), None
    )
    with log_context(run_id="run_abc", worker="host:1.a", project="acme"):
        line = formatter.format(record)
    entry = json.loads(line)
    assert entry["message"] == "hello x"
    assert entry["level"] == "WARNING"
    assert (entry["run_id"], entry["worker"], entry["project"]) == ("run_abc", "host:1.a", "acme")
    bare = json.loads(formatter.format(record))
    assert "run_id" not in bare
