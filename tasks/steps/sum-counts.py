"""Example step for workflows: add up the per-region counts a map step produced."""

from runs.definitions import task


@task(name="Sum counts", description="Fan-in: add up per-region counts (example workflow step)")
def run(ctx):
    counts = ctx.input.get("counts") or []
    total = sum(c["orders"] for c in counts)
    return {"total": total, "regions": len(counts), "big": total > ctx.input.get("threshold", 100)}
