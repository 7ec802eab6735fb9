"""Pull the latest records from a local data file (stands in for an external API)."""

import json
from pathlib import Path

from runs.definitions import task

DATA = Path(__file__).parent / "_data" / "records.json"


@task(
    name="Sync external data",
    description="Pull latest records from the external source",
    schedulable=True,
    input_schema={
        "type": "object",
        "properties": {
            "limit": {
                "type": "integer",
                "minimum": 1,
                "description": "Sync at most this many records",
            },
            "only_active": {"type": "boolean", "default": True},
        },
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "properties": {"synced": {"type": "integer"}, "skipped": {"type": "integer"}},
        "required": ["synced"],
    },
)
def run(ctx):
    records = json.loads(DATA.read_text())
    batch_size = int(ctx.config.get("batchSize", 100))
    if ctx.input.get("only_active", True):
        kept = [r for r in records if r["active"]]
    else:
        kept = records
    limit = ctx.input.get("limit")
    if limit is not None:
        kept = kept[:limit]
    print(f"syncing {len(kept)} of {len(records)} records in batches of {batch_size}")
    for record in kept:
        print(f"  synced #{record['id']} {record['name']} ({record['plan']})")
    return {"synced": len(kept), "skipped": len(records) - len(kept)}
