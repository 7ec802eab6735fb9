"""Example step for workflows: the regions a report covers."""

from runs.definitions import task


@task(name="List regions", description="The regions to report on (example workflow step)")
def run(ctx):
    return {"regions": ctx.input.get("regions") or ["emea", "amer", "apac"]}
