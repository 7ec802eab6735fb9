"""The dashboard's layered graph layout."""

from __future__ import annotations

from studio.dashboard.graph_layout import GAP_X, NODE_H, NODE_W, layout


def n(sid, kind="task"):
    return {"id": sid, "name": sid, "kind": kind, "target": None}


def test_each_step_sits_one_column_after_its_deepest_dependency():
    nodes = [n("a"), n("b"), n("c"), n("d")]
    edges = [
        {"from": "a", "to": "c"},
        {"from": "b", "to": "c"},
        {"from": "c", "to": "d"},
        {"from": "a", "to": "d"},
    ]
    placed = {p.id: p for p in layout(nodes, edges).nodes}
    assert [placed[s].layer for s in "abcd"] == [0, 0, 1, 2]
    assert placed["c"].x - placed["a"].x == NODE_W + GAP_X
    assert placed["a"].y != placed["b"].y  # same column, different rows


def test_rows_follow_the_average_row_of_dependencies():
    nodes = [n("top"), n("bottom"), n("after_bottom"), n("after_top")]
    edges = [{"from": "bottom", "to": "after_bottom"}, {"from": "top", "to": "after_top"}]
    placed = {p.id: p for p in layout(nodes, edges).nodes}
    assert placed["after_top"].row == 0 and placed["after_bottom"].row == 1


def test_size_and_edges_fit_the_nodes():
    drawn = layout([n("a"), n("b")], [{"from": "a", "to": "b"}])
    assert drawn.height == NODE_H + 24
    assert drawn.width == 2 * NODE_W + GAP_X + 24
    (edge,) = drawn.edges
    assert edge.path.startswith(f"M{12 + NODE_W} ") and edge.path.endswith(
        f"{12 + NODE_W + GAP_X} {12 + NODE_H // 2}"
    )


def test_a_single_short_column_is_centred_against_the_tallest():
    nodes = [n("a"), n("b"), n("c"), n("join")]
    edges = [{"from": x, "to": "join"} for x in "abc"]
    placed = {p.id: p for p in layout(nodes, edges).nodes}
    assert placed["join"].y == placed["b"].y
