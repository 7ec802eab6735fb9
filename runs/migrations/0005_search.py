"""A trigram index for the dashboard's run search (runs/models/search.py), PostgreSQL only.

`LIKE '%text%'` over id, name, target, input and error message cannot use a b-tree; pg_trgm's
GIN index can. The indexed expression must match the query's exactly. SQLite: nothing to do.
"""

from django.db import migrations

INDEX = "run_search_trgm"
EXPRESSION = (
    'UPPER("id" || \' \' || "name" || \' \' || "target" || \' \' || "input"::text'
    " || ' ' || COALESCE(\"error\" ->> 'message', ''))"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f'CREATE INDEX IF NOT EXISTS {INDEX} ON "runs_run" USING gin (({EXPRESSION}) gin_trgm_ops)'
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("runs", "0004_webhooks")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
