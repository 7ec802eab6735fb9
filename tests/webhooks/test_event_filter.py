"""The event filter's operators, modes, header paths and validation."""

from __future__ import annotations

import pytest

from runs.event_filter import check_filter, matches

PAYLOAD = {
    "action": "opened",
    "labels": ["bug", "urgent"],
    "repo": {"name": "studio", "private": False, "topics": {"django": 1}},
    "commits": [{"id": "abc"}],
    "count": 1,
}
HEADERS = {"x-github-event": "pull_request"}


def one(path, operator, value=None, **extra):
    cond = {"path": path, "operator": operator, **extra}
    if operator != "exists" or value is not None:
        cond["value"] = value
    return {"mode": "all", "conditions": [cond]}


@pytest.mark.parametrize(
    ("path", "operator", "value", "expected"),
    [
        ("action", "equals", "opened", True),
        ("action", "equals", "closed", False),
        ("repo.name", "equals", "studio", True),
        ("commits.0.id", "equals", "abc", True),
        ("count", "equals", True, False),  # true is not 1
        ("repo.private", "equals", False, True),
        ("action", "not_equals", "closed", True),
        ("action", "not_equals", "opened", False),
        ("missing.path", "not_equals", "x", True),
        ("missing.path", "equals", None, False),
        ("action", "contains", "pen", True),
        ("labels", "contains", "urgent", True),
        ("labels", "contains", "ur", False),
        ("repo.topics", "contains", "django", True),
        ("count", "contains", 1, False),
        ("repo.name", "exists", None, True),
        ("repo.owner", "exists", None, False),
        ("repo.owner", "exists", False, True),
        ("headers.x-github-event", "equals", "pull_request", True),
        ("headers.X-GitHub-Event", "equals", "pull_request", True),
        ("headers.x-other", "exists", None, False),
    ],
)
def test_operators(path, operator, value, expected):
    assert matches(one(path, operator, value), PAYLOAD, HEADERS) is expected


def test_all_needs_every_condition_and_any_needs_one():
    conditions = [
        {"path": "action", "operator": "equals", "value": "opened"},
        {"path": "action", "operator": "equals", "value": "closed"},
    ]
    assert not matches({"mode": "all", "conditions": conditions}, PAYLOAD, HEADERS)
    assert matches({"mode": "any", "conditions": conditions}, PAYLOAD, HEADERS)


def test_no_filter_lets_everything_through():
    assert matches(None, PAYLOAD, HEADERS)
    assert matches({"mode": "all", "conditions": []}, {}, {})


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("all", "event_filter"),
        ({"mode": "some"}, "event_filter.mode"),
        ({"conditions": {}}, "event_filter.conditions"),
        (
            {"conditions": [{"path": "a", "operator": "like", "value": 1}]},
            "event_filter.conditions.0.operator",
        ),
        (
            {"conditions": [{"path": "", "operator": "equals", "value": 1}]},
            "event_filter.conditions.0.path",
        ),
        ({"conditions": [{"path": "a", "operator": "equals"}]}, "event_filter.conditions.0.value"),
        (
            {"conditions": [{"path": "a", "operator": "exists", "value": "yes"}]},
            "event_filter.conditions.0.value",
        ),
        (
            {"conditions": [{"path": "headers.", "operator": "exists"}]},
            "event_filter.conditions.0.path",
        ),
    ],
)
def test_bad_filters_name_the_field(value, field):
    assert field in [f for f, _ in check_filter(value)]


def test_a_good_filter_has_no_problems():
    assert check_filter(one("a.b", "exists")) == []
    assert check_filter(None) == []
