"""Summarise the week's records by plan."""

import json
from collections import Counter
from pathlib import Path

from runs.definitions import task

DATA = Path(__file__).parent.parent / "_data" / "records.json"


@task(name="Weekly report", description="Count active customers per plan", schedulable=True)
def run(ctx):
    records = json.loads(DATA.read_text())
    per_plan = Counter(r["plan"] for r in records if r["active"])
    for plan, count in sorted(per_plan.items()):
        print(f"{plan:>6}: {count}")
    return {"active": sum(per_plan.values()), "per_plan": dict(sorted(per_plan.items()))}
