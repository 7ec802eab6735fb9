"""Example step for workflows: count one region's orders (a stand-in for real work)."""

from runs.definitions import task


@task(
    name="Count a region",
    description="Orders in one region (example workflow step)",
    input_schema={
        "type": "object",
        "required": ["region"],
        "properties": {"region": {"type": "string"}},
    },
)
def run(ctx):
    region = ctx.input["region"]
    print(f"counting {region}")
    return {"region": region, "orders": sum(map(ord, region)) % 97}
