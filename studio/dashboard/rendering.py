"""Render named `{% block %}`s of a page template on their own.

A page and its live fragments live in one template; for an htmx request the view renders only
the blocks the request needs, with the same context the full page would get.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.context import make_context
from django.template.loader import get_template
from django.template.loader_tags import BlockNode


def render_blocks(
    request: HttpRequest, template_name: str, blocks: list[str], context: dict, status: int = 200
) -> HttpResponse:
    template = get_template(template_name).template
    nodes = {node.name: node for node in template.nodelist.get_nodes_by_type(BlockNode)}
    missing = [name for name in blocks if name not in nodes]
    if missing:
        raise ValueError(f"{template_name} has no block(s) {', '.join(missing)}")
    ctx = make_context(context, request)
    with ctx.bind_template(template):
        html = "".join(nodes[name].render(ctx) for name in blocks)
    return HttpResponse(html, status=status)
