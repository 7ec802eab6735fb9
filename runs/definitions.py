"""Task definitions: the `@task` decorator, the context a task receives, and discovery.

A task is a Python file under the tasks directory whose `run` function carries `@task(...)`.
Its id comes from the file path: `tasks/reports/weekly.py` -> `reports-weekly`.
Discovery imports each file by path, reports a broken file as an error for that file only, and
re-imports a file when it changes, so a running server or worker never needs a restart.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

MARKER = "__studio_task__"

# Never handed to a task: Studio's own settings and secrets.
HIDDEN_ENV_NAMES = {
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_SETTINGS_MODULE",
    # libpq and Redis clients read these: Studio's own credentials when it runs with them
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICEFILE",
    "REDIS_PASSWORD",
}
HIDDEN_ENV_PREFIXES = ("STUDIO_", "DJANGO_")

IGNORED_DIRS = {"__pycache__", "node_modules", "tests", "venv", ".venv", "env", "site-packages"}


@dataclass(frozen=True)
class TaskDefinition:
    id: str
    run: Callable[..., Any]
    name: str
    description: str = ""
    input_schema: dict | None = None
    output_schema: dict | None = None
    schedulable: bool = False
    env_allowlist: tuple[str, ...] | None = None
    timeout_seconds: int | None = None
    backoff_limit: int | None = None
    concurrency_limit: int | None = None
    path: str = ""

    @property
    def target(self) -> str:
        return f"task:{self.id}"

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.run)


@dataclass(frozen=True)
class _TaskSpec:
    """What `@task` attaches to the function; the id is only known at discovery."""

    run: Callable[..., Any]
    options: dict


def task(fn: Callable | None = None, /, **options: Any):
    """Mark `run(ctx)` as this file's task. Usable as `@task` or `@task(name=..., ...)`."""
    unknown = set(options) - _OPTION_NAMES
    if unknown:
        raise TypeError(
            f"task() got unknown option(s): {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(_OPTION_NAMES))}"
        )

    def mark(func: Callable) -> Callable:
        if not callable(func):
            raise TypeError("@task must decorate a function")
        setattr(func, MARKER, _TaskSpec(run=func, options=options))
        return func

    return mark(fn) if fn is not None else mark


_OPTION_NAMES = {
    "name",
    "description",
    "input_schema",
    "output_schema",
    "schedulable",
    "env_allowlist",
    "timeout_seconds",
    "backoff_limit",
    "concurrency_limit",
}


def filtered_env(allowlist: tuple[str, ...] | None = None, environ=None) -> dict[str, str]:
    """The environment a task sees: never Studio's secrets; only `allowlist` names if given."""
    environ = os.environ if environ is None else environ
    visible = {
        k: v
        for k, v in environ.items()
        if k not in HIDDEN_ENV_NAMES and not k.startswith(HIDDEN_ENV_PREFIXES)
    }
    if allowlist is not None:
        visible = {k: v for k, v in visible.items() if k in allowlist}
    return visible


class TaskContext:
    """What `run(ctx)` receives. Subclasses decide where events and cancellation come from."""

    def __init__(
        self,
        *,
        input: dict | None = None,
        config: dict | None = None,
        env: dict[str, str] | None = None,
        project_id: str | None = None,
        run_id: str | None = None,
        attempt: int = 1,
    ):
        self.input = input or {}
        self.config = config or {}
        self.env = env if env is not None else {}
        self.project_id = project_id
        self.run_id = run_id
        self.attempt = attempt

    @property
    def cancelled(self) -> bool:
        """True once someone asked this run to stop; a task should then wind down."""
        return False

    def emit(self, event_type: str, payload: Any = None) -> None:
        """Record a structured event in the run's event stream."""
        if not isinstance(event_type, str) or not event_type:
            raise ValueError("event_type must be a non-empty string")
        if len(event_type) > 100:
            raise ValueError("event_type must be at most 100 characters")
        if event_type.startswith("run.") or event_type in ("log", "progress", "events.dropped"):
            raise ValueError(f"event_type {event_type!r} is reserved for Studio")
        self._emit(event_type, payload if payload is not None else {})

    def progress(
        self, current: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress; the dashboard draws it as a bar."""
        self._emit("progress", {"current": current, "total": total, "message": message})

    def _emit(self, event_type: str, payload: Any) -> None:
        raise NotImplementedError


class LocalContext(TaskContext):
    """Context for `manage.py task`: events are printed, cancellation never happens."""

    def __init__(self, *, stream=None, **kwargs):
        super().__init__(**kwargs)
        self._stream = stream

    def _emit(self, event_type: str, payload: Any) -> None:
        import json

        stream = self._stream or sys.stderr
        if event_type == "progress":
            total = f"/{payload['total']}" if payload.get("total") is not None else ""
            message = f" {payload['message']}" if payload.get("message") else ""
            print(f"[progress] {payload['current']}{total}{message}", file=stream, flush=True)
        else:
            print(f"[{event_type}] {json.dumps(payload, default=str)}", file=stream, flush=True)


@dataclass(frozen=True)
class DiscoveryError:
    path: str
    message: str


@dataclass
class Discovery:
    tasks: dict[str, TaskDefinition] = field(default_factory=dict)
    errors: list[DiscoveryError] = field(default_factory=list)

    def get(self, task_id: str) -> TaskDefinition | None:
        return self.tasks.get(task_id)


def task_id_for(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    return "-".join(rel.parts)


def _is_ignored_file(name: str) -> bool:
    return (
        name.startswith(("_", "."))
        or not name.endswith(".py")
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


def _is_ignored_dir(entry: os.DirEntry) -> bool:
    return (
        entry.name.startswith(("_", "."))
        or entry.name in IGNORED_DIRS
        or os.path.exists(os.path.join(entry.path, "pyvenv.cfg"))
    )


def iter_task_files(root: Path) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if not _is_ignored_dir(entry):
                yield from iter_task_files(Path(entry.path))
        elif entry.is_file() and not _is_ignored_file(entry.name):
            yield Path(entry.path)


def check_schema(schema: Any, field_name: str) -> None:
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise ValueError(
            f"{field_name} must be a JSON Schema object (a dict), not {type(schema).__name__}"
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise ValueError(
            f"{field_name} is not a valid JSON Schema{f' at {where}' if where else ''}: {exc.message}"
        ) from None


def _build_definition(task_id: str, path: Path, spec: _TaskSpec) -> TaskDefinition:
    o = spec.options
    for key in ("name", "description"):
        if o.get(key) is not None and not isinstance(o[key], str):
            raise ValueError(f"{key} must be a string, got {o[key]!r}")
    # Not bool(): schedulable="no" would silently make the task schedulable.
    if not isinstance(o.get("schedulable", False), bool):
        raise ValueError(f"schedulable must be True or False, got {o['schedulable']!r}")
    check_schema(o.get("input_schema"), "input_schema")
    check_schema(o.get("output_schema"), "output_schema")
    for key in ("timeout_seconds", "backoff_limit", "concurrency_limit"):
        value = o.get(key)
        if value is not None and (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < (1 if key != "backoff_limit" else 0)
        ):
            raise ValueError(
                f"{key} must be a {'non-negative' if key == 'backoff_limit' else 'positive'} integer, got {value!r}"
            )
    allow = o.get("env_allowlist")
    if allow is not None and (
        not isinstance(allow, list | tuple | set | frozenset)
        or not all(isinstance(n, str) for n in allow)
    ):
        raise ValueError("env_allowlist must be a list of environment variable names")
    params = inspect.signature(spec.run).parameters
    if len(params) != 1:
        raise ValueError(
            f"{spec.run.__name__}() must take exactly one argument (ctx), it takes {len(params)}"
        )
    return TaskDefinition(
        id=task_id,
        run=spec.run,
        name=o.get("name") or task_id,
        description=o.get("description") or "",
        input_schema=o.get("input_schema"),
        output_schema=o.get("output_schema"),
        schedulable=bool(o.get("schedulable", False)),
        env_allowlist=tuple(allow) if allow is not None else None,
        timeout_seconds=o.get("timeout_seconds"),
        backoff_limit=o.get("backoff_limit"),
        concurrency_limit=o.get("concurrency_limit"),
        path=str(path),
    )


def load_task_file(path: Path, task_id: str) -> TaskDefinition:
    """Import one task file by path and return its definition; raise ValueError saying why not."""
    # Unique per path: ids "a-b" and "a_b" must not share a module.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    safe_id = re.sub(r"\W", "_", task_id)
    module_name = f"studio_tasks.{safe_id}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError("cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so dataclasses, pickling and tracebacks can find it
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise ValueError(f"syntax error on line {exc.lineno}: {exc.msg}") from None
    except (Exception, SystemExit) as exc:
        # SystemExit too: a file that calls sys.exit() (say, argparse at module level) is broken,
        # but it must not take discovery, the CLI or a worker down with it.
        sys.modules.pop(module_name, None)
        raise ValueError(f"{type(exc).__name__} while importing: {exc}") from None
    specs = {
        id(v): v
        for v in (getattr(obj, MARKER, None) for obj in vars(module).values())
        if isinstance(v, _TaskSpec)
    }
    if not specs:
        raise ValueError(
            "defines no task: decorate its run(ctx) function with @task from runs.definitions"
        )
    if len(specs) > 1:
        raise ValueError(f"defines {len(specs)} tasks; a file defines exactly one")
    return _build_definition(task_id, path, next(iter(specs.values())))


class TaskRegistry:
    """Discovers tasks under a directory; re-imports only files that changed since last time."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple[int, int], TaskDefinition | DiscoveryError]] = {}
        self._snapshot: Discovery | None = None
        self._signature: tuple | None = None

    def discover(self) -> Discovery:
        with self._lock:
            files = list(iter_task_files(self.root))
            stamps = []
            for path in files:
                try:
                    st = path.stat()
                    stamps.append((path, (st.st_mtime_ns, st.st_size)))
                except FileNotFoundError:
                    continue
            signature = tuple(stamps)
            if signature == self._signature and self._snapshot is not None:
                return self._snapshot
            result = Discovery()
            seen: dict[str, str] = {}
            cache = {}
            for path, stamp in stamps:
                cached = self._cache.get(path)
                if cached and cached[0] == stamp:
                    loaded = cached[1]
                else:
                    task_id = task_id_for(path, self.root)
                    try:
                        loaded = load_task_file(path, task_id)
                    except ValueError as exc:
                        loaded = DiscoveryError(path=self._display(path), message=str(exc))
                cache[path] = (stamp, loaded)
                if isinstance(loaded, DiscoveryError):
                    result.errors.append(loaded)
                elif loaded.id in seen:
                    result.errors.append(
                        DiscoveryError(
                            path=self._display(path),
                            message=f"task id {loaded.id!r} is already defined by {seen[loaded.id]}",
                        )
                    )
                else:
                    seen[loaded.id] = self._display(path)
                    result.tasks[loaded.id] = loaded
            self._cache = cache
            self._signature = signature
            self._snapshot = result
            return result

    def _display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)


_registries: dict[Path, TaskRegistry] = {}
_registries_lock = threading.Lock()


def get_registry(root: Path | None = None) -> TaskRegistry:
    if root is None:
        from django.conf import settings

        root = settings.STUDIO_TASKS_DIR
    root = Path(root).resolve()
    with _registries_lock:
        if root not in _registries:
            _registries[root] = TaskRegistry(root)
        return _registries[root]


def discover(root: Path | None = None) -> Discovery:
    return get_registry(root).discover()
