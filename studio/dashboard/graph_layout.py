"""A small layered layout for workflow graphs, drawn left to right as server-rendered SVG.

Each step goes in the column after its deepest dependency (longest path from a root), and within
a column steps are ordered by the average row of their dependencies (one barycenter pass), which
keeps most edges short and uncrossed for the graphs people write. No JavaScript, no CDN.
"""

from __future__ import annotations

from dataclasses import dataclass

NODE_W = 168
NODE_H = 52
GAP_X = 56
GAP_Y = 18
PAD = 12


@dataclass
class PlacedNode:
    id: str
    name: str
    kind: str
    target: str | None
    layer: int
    row: int
    x: int
    y: int
    step_status: str = "pending"
    href: str | None = None

    @property
    def cx(self) -> int:
        return self.x + NODE_W // 2

    @property
    def label(self) -> str:
        return self.name if len(self.name) <= 22 else self.name[:21] + "…"


@dataclass
class PlacedEdge:
    source: str
    target: str
    path: str


@dataclass
class Layout:
    nodes: list[PlacedNode]
    edges: list[PlacedEdge]
    width: int
    height: int
    node_w: int = NODE_W
    node_h: int = NODE_H


def layout(nodes: list[dict], edges: list[dict]) -> Layout:
    """`nodes` [{"id", "name", "kind", "target"}] in topological order, `edges` [{"from", "to"}]."""
    deps: dict[str, list[str]] = {n["id"]: [] for n in nodes}
    for e in edges:
        deps[e["to"]].append(e["from"])
    layer: dict[str, int] = {}
    for n in nodes:  # topological order: dependencies are placed first
        layer[n["id"]] = 1 + max((layer[d] for d in deps[n["id"]]), default=-1)
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(layer[n["id"]], []).append(n["id"])
    row: dict[str, int] = {}
    declared = {n["id"]: i for i, n in enumerate(nodes)}
    for index in sorted(columns):
        members = columns[index]
        if index > 0:
            members.sort(
                key=lambda sid: (
                    sum(row[d] for d in deps[sid]) / len(deps[sid]) if deps[sid] else 0,
                    declared[sid],
                )
            )
        for r, sid in enumerate(members):
            row[sid] = r
    tallest = max(len(m) for m in columns.values()) if columns else 0
    placed = []
    for n in nodes:
        sid = n["id"]
        column = columns[layer[sid]]
        # Centre short columns against the tallest one.
        offset = (tallest - len(column)) * (NODE_H + GAP_Y) // 2
        placed.append(
            PlacedNode(
                id=sid,
                name=n.get("name") or sid,
                kind=n["kind"],
                target=n.get("target"),
                layer=layer[sid],
                row=row[sid],
                x=PAD + layer[sid] * (NODE_W + GAP_X),
                y=PAD + offset + row[sid] * (NODE_H + GAP_Y),
            )
        )
    by_id = {p.id: p for p in placed}
    drawn = []
    for e in edges:
        a, b = by_id[e["from"]], by_id[e["to"]]
        x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
        x2, y2 = b.x, b.y + NODE_H // 2
        mid = (x1 + x2) // 2
        drawn.append(PlacedEdge(a.id, b.id, f"M{x1} {y1} C{mid} {y1} {mid} {y2} {x2} {y2}"))
    width = PAD * 2 + (max(layer.values()) + 1) * (NODE_W + GAP_X) - GAP_X if layer else 0
    height = PAD * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y if tallest else 0
    return Layout(placed, drawn, width, height)
