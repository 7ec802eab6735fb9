"""Fan-out / fan-in: one child run per region, then one step that adds them up."""

from runs.workflows import workflow


@workflow(
    name="Regional report",
    description="Count orders per region in parallel, then sum them",
    input_schema={
        "type": "object",
        "properties": {
            "regions": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["emea", "amer", "apac"],
            }
        },
    },
    schedulable=True,
)
def build(wf):
    regions = wf.task("regions", "steps-list-regions", input={"regions": wf.input("regions")})
    counts = wf.map(
        "count",
        "steps-count-region",
        items=regions.output("regions"),
        input={"region": wf.item()},
        concurrency=4,
        name="Count each region",
    )
    total = wf.task("sum", "steps-sum-counts", input={"counts": counts.output()})
    return {"total": total.output("total"), "per_region": counts.output()}
