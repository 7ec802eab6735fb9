"""runs.models.paging and Run.objects: the one keyset pagination, its cursors and run filters."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from runs.models import Run, is_run_id, new_run_id
from runs.models.paging import (
    InvalidCursor,
    Position,
    event_cursor,
    parse_event_cursor,
    parse_run_cursor,
    run_cursor,
)

RUN_ID = "run_" + "a" * 32


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC),
        dt.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ],
)
def test_a_position_survives_its_token_exactly(when):
    position = Position(when, RUN_ID)
    assert Position.parse(position.token()) == position
    assert parse_run_cursor(run_cursor("next", position)) == ("next", position)
    assert parse_run_cursor(run_cursor("prev", position)) == ("prev", position)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "nonsense",
        f"12~{RUN_ID[:-1]}",  # id too short
        f"12~{RUN_ID.upper()}",
        f"1.5~{RUN_ID}",
        f"+12~{RUN_ID}",
        f"١٢~{RUN_ID}",  # digits, but not ASCII ones
        f"99999999999999999999~{RUN_ID}",  # far beyond year 9999
        f"253402300800000000~{RUN_ID}",  # 10000-01-01: one past datetime.max
        f"-62135596800000001~{RUN_ID}",  # one before datetime.min
        f"{'1' * 5000}~{RUN_ID}",  # overlong (and past int()'s digit limit)
    ],
)
def test_a_position_this_module_did_not_hand_out_is_refused(token):
    with pytest.raises(InvalidCursor):
        Position.parse(token)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "%%%",
        "e30",
        "A" * 5000,
        event_cursor(5),
        run_cursor("next", Position.parse(f"1~{RUN_ID}"))[:-3],
    ],
)
def test_a_runs_cursor_this_module_did_not_hand_out_is_refused(cursor):
    with pytest.raises(InvalidCursor):
        parse_run_cursor(cursor)


def test_an_events_cursor_names_an_event_id():
    assert parse_event_cursor(event_cursor(42)) == 42
    for bad in ("garbage", event_cursor(2**63), run_cursor("next", Position.parse(f"1~{RUN_ID}"))):
        with pytest.raises(InvalidCursor):
            parse_event_cursor(bad)


def test_the_run_id_pattern():
    assert is_run_id(new_run_id())
    for bad in (None, 5, "run_", RUN_ID + "0", " " + RUN_ID, RUN_ID.replace("a", "g")):
        assert not is_run_id(bad)


# --- Run.objects ------------------------------------------------------------------------------


@pytest.fixture
def runs(project, other_project) -> list[Run]:
    """Seven runs of `project` (two share each timestamp) and one of another project."""
    now = timezone.now()
    made = []
    for i in range(7):
        run = Run.objects.create(project=project, target="task:sync-data")
        Run.objects.filter(pk=run.pk).update(created_at=now - dt.timedelta(minutes=i // 2))
        made.append(run)
    Run.objects.create(project=other_project, target="task:sync-data")
    return made


@pytest.mark.django_db
def test_keyset_pages_walk_every_run_once_both_ways(project, runs):
    mine = Run.objects.owned_by(project)
    seen, page = [], mine.keyset(limit=3)
    seen += page.rows
    assert page.newer is None
    while page.older:
        page = mine.keyset(limit=3, before=page.older)
        seen += page.rows
    assert [r.pk for r in seen] == [r.pk for r in mine.order_by("-created_at", "-id")]
    assert len(seen) == 7
    back = []
    while page.newer:
        page = mine.keyset(limit=3, after=page.newer)
        back = page.rows + back
    assert [r.pk for r in back] == [r.pk for r in seen[: len(back)]]


@pytest.mark.django_db
def test_a_run_created_meanwhile_shifts_no_page(project, runs):
    mine = Run.objects.owned_by(project)
    first = mine.keyset(limit=3)
    Run.objects.create(project=project, target="task:sync-data")
    second = mine.keyset(limit=3, before=first.older)
    assert {r.pk for r in first.rows}.isdisjoint(r.pk for r in second.rows)


@pytest.mark.django_db
def test_matching_and_search(project, other_project):
    failed = Run.objects.create(project=project, target="task:failing-task", status="failed")
    api = Run.objects.create(
        project=project, target="task:sync-data", trigger_kind="api", name="Nightly"
    )
    Run.objects.create(project=other_project, target="task:sync-data", trigger_kind="api")
    mine = Run.objects.owned_by(project)
    assert set(mine.matching(status="failed")) == {failed}
    assert set(mine.matching(status=["pending", "running"])) == {api}
    assert set(mine.matching(trigger_kind="api")) == {api}
    assert set(mine.matching(target="task:sync-data", kind="task")) == {api}
    assert set(mine.matching(created_after=api.created_at)) == set()
    assert set(mine.matching(created_from=api.created_at)) == {api}
    assert set(mine.search("nightly")) == {api}
    assert set(mine.search(failed.pk)) == {failed}
    assert set(mine.search("")) == {failed, api}
