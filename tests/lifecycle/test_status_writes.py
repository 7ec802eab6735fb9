"""Only runs/lifecycle.py writes a run's status or its cancel request.

Read from the source, not by running it: ORM writes (`.update(status=...)`, `.create(status=...)`,
field dicts such as `{"status": RunStatus.FAILED}` handed to an update), attribute assignments
(`run.status = ...`) and raw SQL strings (`UPDATE ... SET status = ...`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "runs" / "lifecycle.py"
GUARDED = {"status", "cancel_requested_at"}
WRITE_METHODS = {"update", "create", "update_or_create", "get_or_create", "bulk_create"}
RAW_SQL = re.compile(r"\bUPDATE\b.*\bSET\b.*\b(status|cancel_requested_at)\s*=", re.I | re.S)


def _is_status_value(node: ast.AST) -> bool:
    """`RunStatus.X`, `Run.Status.X` or a status string literal such as "failed"."""
    if isinstance(node, ast.Attribute):
        text = ast.unparse(node)
        return text.startswith(("RunStatus.", "Run.Status."))
    return isinstance(node, ast.Constant) and node.value in {
        "pending",
        "running",
        "waiting",
        "completed",
        "failed",
        "cancelled",
    }


PRAGMA = "# not-a-transition:"  # seeding a scratch database, e.g. the benchmarks' fake history


def status_writes(source: str, filename: str = "<string>") -> list[str]:
    """Each place in `source` that writes a run's status, as 'file:line what'."""
    found = []
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source, filename)):
        line = getattr(node, "lineno", 0)
        where = f"{filename}:{line}"
        if line and PRAGMA in lines[line - 1]:
            continue
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "Run"
            and any(kw.arg in GUARDED for kw in node.keywords)
        ):
            found.append(f"{where} Run(status=...)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in WRITE_METHODS:
                for kw in node.keywords:
                    if kw.arg in GUARDED:
                        found.append(f"{where} .{node.func.attr}({kw.arg}=...)")
                    if kw.arg == "defaults" and isinstance(kw.value, ast.Dict):
                        keys = {k.value for k in kw.value.keys if isinstance(k, ast.Constant)}
                        if keys & GUARDED:
                            found.append(f"{where} .{node.func.attr}(defaults={{status}})")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "status"
                    and _is_status_value(value)
                ):
                    found.append(f"{where} {{'status': {ast.unparse(value)}}}")
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr in GUARDED
                    and not (isinstance(target.value, ast.Name) and target.value.id == "self")
                ):
                    found.append(f"{where} {ast.unparse(target)} = ...")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if RAW_SQL.search(node.value):
                found.append(f"{where} raw SQL setting status")
    return found


def project_sources():
    for folder in ("runs", "studio"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == OWNER or "migrations" in path.parts:
                continue
            yield path


def test_no_module_but_the_lifecycle_writes_a_run_status():
    offenders = []
    for path in project_sources():
        offenders += status_writes(path.read_text(), str(path.relative_to(ROOT)))
    assert offenders == [], "status written outside runs/lifecycle.py:\n" + "\n".join(offenders)


def test_the_lifecycle_itself_is_seen_writing_status():
    """The check finds the writes it is meant to find (else the test above proves nothing)."""
    assert len(status_writes(OWNER.read_text())) >= 5


def test_each_kind_of_write_is_caught():
    samples = {
        "Run.objects.filter(pk=1).update(status=RunStatus.FAILED)": 1,
        "Run.objects.create(project=p, status='running')": 1,
        "fields = {'status': RunStatus.CANCELLED, 'error': e}": 1,
        "run.status = 'completed'": 1,
        "run.cancel_requested_at = now": 1,
        "Run(project=p, status=RunStatus.RUNNING)": 1,
        "Run.objects.create(status='running')  # not-a-transition: bench history": 0,
        "Run.objects.update_or_create(pk=1, defaults={'status': 'failed'})": 2,  # call + dict
        "cursor.execute('UPDATE runs_run SET status = %s WHERE id = %s', p)": 1,
        # reads are fine
        "Run.objects.filter(status=RunStatus.FAILED).count()": 0,
        "qs.exclude(status='completed')": 0,
        "self.status = 422": 0,
        "return {'status': run.status}": 0,
    }
    for source, expected in samples.items():
        assert len(status_writes(source)) == expected, source
