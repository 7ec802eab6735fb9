"""Veryfront wire compatibility: store the runtime target kind, and give every stored error a code.

The wire's `error.code` is absent or a string, never null (the Veryfront SDK's schema refuses
null); older rows written before the one error constructor may hold `"code": null`.
"""

from django.db import migrations, models

FALLBACK_CODE = "error"
BATCH = 500


def fill_error_codes(apps, schema_editor):
    Run = apps.get_model("runs", "Run")
    # JSON null inside a JSONField is not SQL NULL, and key lookups differ across databases:
    # scan the (few) failed or cancelled rows with an error in Python, in batches.
    rows = Run.objects.filter(error__isnull=False).only("id", "error").order_by("pk")
    changed = []
    for run in rows.iterator(chunk_size=BATCH):
        error = run.error
        if not error:
            continue  # an empty error is no error (the wire sends null)
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            if isinstance(code, str) and code and isinstance(message, str):
                continue
            run.error = {
                **error,
                "code": code if isinstance(code, str) and code else FALLBACK_CODE,
                "message": message if isinstance(message, str) else str(message or ""),
            }
        else:
            run.error = {"message": str(error), "code": FALLBACK_CODE, "detail": None}
        changed.append(run)
        if len(changed) >= BATCH:
            Run.objects.bulk_update(changed, ["error"])
            changed = []
    if changed:
        Run.objects.bulk_update(changed, ["error"])


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0002_run_cancel_reason"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="runtime_target_kind",
            field=models.CharField(blank=True, max_length=32, null=True),
        ),
        migrations.RunPython(fill_error_codes, migrations.RunPython.noop, elidable=True),
    ]
