"""The run page's log: search, filter chips, line links, ANSI colours, download; tracebacks
and events in words."""

from __future__ import annotations

import pytest

from runs.models import RunEvent
from studio.dashboard import tracebacks
from studio.dashboard.ansi import ansi_to_html, strip_ansi
from tests.dashboard.conftest import make_run

pytestmark = pytest.mark.django_db


def _long_run(project, lines=3000, **fields):
    run = make_run(project, status="running", **fields)
    RunEvent.objects.bulk_create(
        RunEvent(
            run_id=run.pk,
            event_type="log",
            payload={"stream": "stderr" if i % 10 == 0 else "stdout", "line": f"line {i}"},
        )
        for i in range(lines)
    )
    return run


def test_ansi_colours_render_escaped_and_strip_in_plain_text():
    line = "\x1b[31mFAILED\x1b[0m test_x <script>\x1b[1;32m ok\x1b[0m\x1b[2K"
    html = ansi_to_html(line)
    assert '<span class="ansi-red">FAILED</span>' in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert '<span class="ansi-green ansi-bold"> ok</span>' in html
    assert "\x1b" not in html
    assert strip_ansi(line) == "FAILED test_x <script> ok"


def test_search_jumps_between_matches_on_the_server(login, viewer, project):
    run = _long_run(project)
    client = login(viewer)
    html = client.get(f"/p/acme/runs/{run.pk}/?q=line 12").content.decode()
    # "line 12", "line 120".."line 129", "line 1200".."line 1299": 111 matches, the first shown.
    assert "1 of 111" in html
    first = RunEvent.objects.get(run=run, payload__line="line 12")
    assert f'class="ev ev-log ev-stdout ev-target" id="ev-{first.pk}"' in html
    assert "<mark>line 12</mark>" in html
    html = client.get(f"/p/acme/runs/{run.pk}/?q=line 12&match=111").content.decode()
    last = RunEvent.objects.get(run=run, payload__line="line 1299")
    assert "111 of 111" in html and f'ev-target" id="ev-{last.pk}"' in html
    assert "No matches" in client.get(f"/p/acme/runs/{run.pk}/?q=nothing-like-it").content.decode()


def test_filter_chips_show_only_the_chosen_kinds(login, viewer, project):
    run = _long_run(project, lines=50)
    html = login(viewer).get(f"/p/acme/runs/{run.pk}/?show=&show=stderr").content.decode()
    assert "line 0" in html and "line 10" in html and "line 11" not in html
    assert 'value="stderr" checked' in html and 'value="stdout" checked' not in html
    assert "&amp;show=stderr" in html  # the live poll keeps the filter


def test_a_linked_line_opens_in_the_middle_of_its_window(login, viewer, project):
    run = _long_run(project)
    target = RunEvent.objects.get(run=run, payload__line="line 700")
    html = login(viewer).get(f"/p/acme/runs/{run.pk}/?around={target.pk}").content.decode()
    assert f'data-target="ev-{target.pk}"' in html
    assert "line 650" in html and "line 749" in html and "line 2999" not in html
    assert f'href="?around={target.pk}#ev-{target.pk}"' in html
    assert "Jump to the latest" in html
    # Not at the tail: no new lines are added here, but a quiet poll watches for the end.
    last = RunEvent.objects.filter(run=run).order_by("-id").first()
    assert f"events/?after={last.pk}&amp;quiet=1" in html


def test_a_quiet_poll_adds_no_lines_but_settles_the_page(login, viewer, project):
    run = _long_run(project, lines=10)
    last = RunEvent.objects.filter(run=run).order_by("-id").first()
    RunEvent.objects.create(
        run_id=run.pk, event_type="log", payload={"line": "new", "stream": "stdout"}
    )
    client = login(viewer)
    html = client.get(f"/p/acme/runs/{run.pk}/events/?after={last.pk}&quiet=1").content.decode()
    assert "new" not in html.split('id="log-poller"')[0] and "quiet=1" in html
    from runs.models import Run

    Run.objects.filter(pk=run.pk).update(status="completed")
    RunEvent.objects.create(run_id=run.pk, event_type="run.completed", payload={})
    html = client.get(f"/p/acme/runs/{run.pk}/events/?after={last.pk}&quiet=1").content.decode()
    assert 'id="run-summary"' in html and "Completed" in html and 'id="log-poller"' not in html


def test_download_is_the_whole_log_while_running_without_ansi(login, viewer, project):
    run = _long_run(project, lines=2500)
    RunEvent.objects.create(
        run_id=run.pk, event_type="log", payload={"stream": "stdout", "line": "\x1b[32mdone\x1b[0m"}
    )
    response = login(viewer).get(f"/p/acme/runs/{run.pk}/logs.txt?download=1")
    assert response["Content-Disposition"] == f'attachment; filename="{run.pk}.log"'
    text = b"".join(response.streaming_content).decode()
    lines = text.splitlines()
    assert len(lines) == 2501 and lines[0] == "line 0" and lines[-1] == "done"


def test_raw_log_of_a_finished_run_is_stripped(login, viewer, project):
    run = make_run(project, status="completed", logs="\x1b[31mred\x1b[0m plain\n")
    response = login(viewer).get(f"/p/acme/runs/{run.pk}/logs.txt")
    assert response.content.decode() == "red plain\n"


def test_events_are_shown_in_words(login, viewer, project):
    run = make_run(
        project,
        status="running",
        events=[
            ("run.cancelling", {"grace_seconds": 5}),
            (
                "run.retrying",
                {"attempt": 2, "delay_seconds": 1.5, "error": {"message": "boom", "code": "x"}},
            ),
        ],
    )
    html = login(viewer).get(f"/p/acme/runs/{run.pk}/").content.decode()
    assert "cancel requested, grace 5 s" in html
    assert "attempt 1 failed: boom; attempt 2 in 1.5 s" in html
    assert "grace_seconds" not in html


TRACEBACK = """Traceback (most recent call last):
  File "{base}/runs/process/runner.py", line 67, in execute
    result = definition.run(ctx)
             ^^^^^^^^^^^^^^^^^^^
  File "{base}/tasks/failing-task.py", line 20, in run
    raise UpstreamUnavailable(f"cannot sync: {{ctx.input['reason']}}")
studio_tasks.failing_task_1a2b3c4d.UpstreamUnavailable: cannot sync: the upstream API answered 503
"""


def test_a_traceback_headlines_the_exception_and_folds_studio_frames(settings):
    detail = TRACEBACK.format(base=settings.BASE_DIR)
    tb = tracebacks.parse(detail, "cannot sync: the upstream API answered 503", "failing-task")
    assert tb.headline == "UpstreamUnavailable: cannot sync: the upstream API answered 503"
    kinds = [b.kind for b in tb.blocks]
    assert kinds == ["text", "studio", "frames", "text"]
    assert tb.blocks[2].frames[0].path == "tasks/failing-task.py"
    assert tb.blocks[3].lines == [
        "failing-task.UpstreamUnavailable: cannot sync: the upstream API answered 503"
    ]
    assert tracebacks.parse("just text", "m") is None


def test_the_run_page_shows_the_traceback_readably(login, viewer, project, settings):
    run = make_run(
        project,
        status="failed",
        target="task:failing-task",
        error={
            "message": "cannot sync: the upstream API answered 503",
            "code": "task_error",
            "detail": TRACEBACK.format(base=settings.BASE_DIR),
        },
    )
    html = login(viewer).get(f"/p/acme/runs/{run.pk}/").content.decode()
    assert "UpstreamUnavailable: cannot sync: the upstream API answered 503" in html
    assert "1 Studio frame" in html
    assert "1a2b3c4d" not in html.split('id="error-raw"')[0]
    assert "File &quot;tasks/failing-task.py&quot;" in html


def test_output_is_a_json_tree_with_raw_and_copy(login, viewer, project):
    run = make_run(project, status="completed", output={"synced": 3, "items": ["a", "<b>"]})
    html = login(viewer).get(f"/p/acme/runs/{run.pk}/").content.decode()
    assert '<span class="j-key">synced</span>: <span class="j-num">3</span>' in html
    assert "&quot;&lt;b&gt;&quot;" in html
    assert 'data-copy-text="#json-raw-output"' in html and "<summary>Raw</summary>" in html


def test_duration_says_this_attempt_on_a_retried_run(login, viewer, project):
    run = make_run(project, status="completed", attempt=3, duration_ms=4100)
    html = login(viewer).get(f"/p/acme/runs/{run.pk}/").content.decode()
    assert '4.1 s <span class="muted">this attempt</span>' in html
    assert "all 3 attempts" in html


def test_a_finished_runs_download_is_its_whole_log_not_the_capped_column(login, viewer, project):
    run = _long_run(project, lines=100)
    from runs.models import Run

    Run.objects.filter(pk=run.pk).update(status="completed", logs="[cut]\nline 99\n")
    response = login(viewer).get(f"/p/acme/runs/{run.pk}/logs.txt?download=1")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 100 and lines[0] == "line 0"
