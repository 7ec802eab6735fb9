"""Crafted page links on the dashboard's runs list: reported, never a 500."""

from __future__ import annotations

import pytest

from .conftest import make_run

pytestmark = pytest.mark.django_db

RUN = "run_" + "f" * 32


@pytest.mark.parametrize(
    "param, value",
    [
        ("before", f"99999999999999999999~{RUN}"),  # beyond year 9999
        ("after", f"253402300800000000~{RUN}"),  # one microsecond past datetime.max
        ("before", f"-99999999999999999~{RUN}"),
        ("after", "9" * 79),  # within the field's limit, no run id
        ("before", "1" * 500),  # beyond the field's limit
        ("before", f"1~{RUN[:-1]}"),
    ],
)
def test_a_crafted_page_link_is_reported_not_crashed(login, viewer, param, value):
    response = login(viewer).get("/p/acme/runs/", {param: value})
    assert response.status_code == 400
    assert "Not a valid page link." in response.content.decode()


def test_a_page_link_at_the_edge_of_time_works(login, viewer, project):
    run = make_run(project, status="completed")
    response = login(viewer).get("/p/acme/runs/", {"before": f"253402300799999999~{RUN}"})
    assert [r.pk for r in response.context["runs"]] == [run.pk]
