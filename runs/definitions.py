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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any

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
    run: Callable[..., Any] | None  # None where the definition is data (web, worker)
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
    limits: dict | None = None  # per-run limits over STUDIO_RUN_* (runs/process/sandbox.py)
    network: bool = True  # False: the run gets no network at all
    # True: its runs are served one after another by a warm process (runs/worker/reuse.py)
    reuse_process: bool = False

    @property
    def target(self) -> str:
        return f"task:{self.id}"

    @property
    def is_async(self) -> bool:
        return self.run is not None and inspect.iscoroutinefunction(self.run)


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
    "limits",
    "network",
    "reuse_process",
}
LIMIT_NAMES = ("memory_mb", "cpu_seconds", "max_processes", "max_file_mb", "disk_mb")
# What the web and worker processes learn about a task: everything but the code.
DATA_FIELDS = (
    "id",
    "name",
    "description",
    "input_schema",
    "output_schema",
    "schedulable",
    "env_allowlist",
    "timeout_seconds",
    "backoff_limit",
    "concurrency_limit",
    "path",
    "limits",
    "network",
    "reuse_process",
)


def definition_to_data(definition: TaskDefinition) -> dict:
    """A definition as JSON-able data (what a sandboxed discovery process prints)."""
    data = {name: getattr(definition, name) for name in DATA_FIELDS}
    data["env_allowlist"] = list(definition.env_allowlist) if definition.env_allowlist else None
    data["is_async"] = definition.is_async
    return data


def definition_from_data(data: dict) -> TaskDefinition:
    """A definition without its code, from `definition_to_data`'s output."""
    fields = {name: data.get(name) for name in DATA_FIELDS}
    allow = fields["env_allowlist"]
    fields["env_allowlist"] = tuple(allow) if allow is not None else None
    fields["schedulable"] = bool(fields["schedulable"])
    fields["network"] = fields["network"] is not False
    fields["reuse_process"] = fields["reuse_process"] is True
    fields["description"] = fields["description"] or ""
    return TaskDefinition(run=None, **fields)


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


# Set in a run's process, where the task file was already checked by discovery: the schemas are
# not checked again, which keeps jsonschema out of the fork server (a smaller process forks
# faster) and out of every run's import time.
SCHEMAS_CHECKED_ELSEWHERE = False


def check_schema(schema: Any, field_name: str) -> None:
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise ValueError(
            f"{field_name} must be a JSON Schema object (a dict), not {type(schema).__name__}"
        )
    if SCHEMAS_CHECKED_ELSEWHERE:
        return
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

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
    limits = o.get("limits")
    if limits is not None:
        if not isinstance(limits, dict):
            raise ValueError(f"limits must be a dict, got {limits!r}")
        unknown = set(limits) - set(LIMIT_NAMES)
        if unknown:
            raise ValueError(
                f"limits has unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                f"allowed: {', '.join(LIMIT_NAMES)}"
            )
        for key, value in limits.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"limits[{key!r}] must be a positive integer, got {value!r}")
    for key, default in (("network", True), ("reuse_process", False)):
        if not isinstance(o.get(key, default), bool):
            raise ValueError(f"{key} must be True or False, got {o[key]!r}")
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
        limits=dict(limits) if limits else None,
        network=o.get("network", True),
        reuse_process=o.get("reuse_process", False),
    )


def exec_definition_file(
    path: Path, module_name: str, source: bytes | None = None, *, keep: bool = False
):
    """Run a definition file (a workflow's, a schedule's, a webhook's) as a fresh module and
    return it; raise ValueError saying why it failed. With `source`, run those bytes as the
    file: the sandboxed discovery process is handed the bytes, since its user may not be allowed
    to open the file. The module sits in sys.modules while it runs (dataclasses and the like look
    it up there), and stays there with `keep`."""
    if source is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
    else:
        spec = importlib.util.spec_from_loader(module_name, loader=None, origin=str(path))
    if spec is None or (source is None and spec.loader is None):
        raise ValueError("cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    loaded = False
    try:
        if source is None:
            spec.loader.exec_module(module)
        else:
            module.__file__ = str(path)
            exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102
        loaded = True
    except SyntaxError as exc:
        raise ValueError(f"syntax error on line {exc.lineno}: {exc.msg}") from None
    except (Exception, SystemExit) as exc:
        raise ValueError(f"{type(exc).__name__} while importing: {exc}") from None
    finally:
        if not (keep and loaded):
            sys.modules.pop(module_name, None)
    return module


def load_task_file(
    path: Path, task_id: str, source: bytes | CodeType | None = None
) -> TaskDefinition:
    """Import one task file by path and return its definition; raise ValueError saying why not.

    With `source`, run those bytes (or that compiled code) as the file: the fork server reads
    and compiles it before the sandboxed child gives up the rights to read it."""
    # Unique per path: ids "a-b" and "a_b" must not share a module.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    safe_id = re.sub(r"\W", "_", task_id)
    module_name = f"studio_tasks.{safe_id}_{digest}"
    if source is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
    else:
        spec = importlib.util.spec_from_loader(module_name, loader=None, origin=str(path))
    if spec is None or (source is None and spec.loader is None):
        raise ValueError("cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so dataclasses, pickling and tracebacks can find it
    try:
        if source is None:
            spec.loader.exec_module(module)
        else:
            module.__file__ = str(path)
            code = source if isinstance(source, CodeType) else compile(source, str(path), "exec")
            exec(code, module.__dict__)  # noqa: S102
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


Loaded = TaskDefinition | DiscoveryError
# (root, [(path, task_id), ...]) -> {path: definition or error message}
BatchLoader = Callable[[Path, list[tuple[Path, str]]], dict[Path, "TaskDefinition | str"]]


def load_in_process(root: Path, items: list[tuple[Path, str]]) -> dict[Path, TaskDefinition | str]:
    """Import task files in this process (the CLI, tests, and inside a sandbox)."""
    loaded: dict[Path, TaskDefinition | str] = {}
    for path, task_id in items:
        try:
            loaded[path] = load_task_file(path, task_id)
        except ValueError as exc:
            loaded[path] = str(exc)
    return loaded


class TaskRegistry:
    """Discovers tasks under a directory; loads only files that changed since last time.

    `loader` loads a batch of changed files: in this process by default, or in a sandboxed
    process that hands back the definitions as data (see runs/sandboxing.py)."""

    def __init__(self, root: Path, loader: BatchLoader | None = None):
        self.root = Path(root)
        self.loader = loader or load_in_process
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple[int, int], Loaded]] = {}
        self._snapshot: Discovery | None = None
        self._signature: tuple | None = None
        self._looked: tuple[float, Discovery] | None = None  # (monotonic time, what was seen)

    def discover(self, max_age: float = 0.0) -> Discovery:
        """The tasks as the directory holds them now; with `max_age`, as it held them when it
        was last looked at, if that was less than `max_age` seconds ago (no look at all)."""
        if (recent := self._recent(max_age)) is not None:
            return recent
        with self._lock:
            # Those that waited for the lock use what the thread before them just saw.
            if (recent := self._recent(max_age)) is not None:
                return recent
            started = time.monotonic()  # what is seen below is at least this recent
            result = self._look()
            self._looked = (started, result)
            return result

    def _recent(self, max_age: float) -> Discovery | None:
        looked = self._looked
        if max_age > 0 and looked is not None and time.monotonic() - looked[0] < max_age:
            return looked[1]
        return None

    def _look(self) -> Discovery:
        """Look at the directory: stat every file, load the ones that changed."""
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
        changed = [
            (path, task_id_for(path, self.root))
            for path, stamp in stamps
            if (cached := self._cache.get(path)) is None or cached[0] != stamp
        ]
        fresh = self.loader(self.root, changed) if changed else {}
        result = Discovery()
        seen: dict[str, str] = {}
        cache = {}
        for path, stamp in stamps:
            if path in fresh:
                value = fresh[path]
                loaded = (
                    value
                    if isinstance(value, TaskDefinition)
                    else DiscoveryError(path=self._display(path), message=str(value))
                )
            else:
                loaded = self._cache[path][1]
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


_registries: dict[tuple[Path, bool], TaskRegistry] = {}
# The same registries by the root as callers name it. Resolving the name (a system call per
# path component) cost every create as much as discovery's own look at the directory, so a
# name is resolved once: a symlink on the way to the tasks directory that is later pointed
# elsewhere is not followed anew (settings resolve STUDIO_TASKS_DIR once at startup anyway).
_by_name: dict[tuple[Path | str, bool], TaskRegistry] = {}
_BY_NAME_MAX = 256  # a bound, not a knob: callers name a handful of roots
_registries_lock = threading.Lock()
_sandboxed_loader: Callable[[], BatchLoader] | None = None


def use_sandboxed_discovery(make_loader: Callable[[], BatchLoader]) -> None:
    """Have `discover()` load files through `make_loader()` (Studio's app config passes the
    sandboxed discovery process; this module stays free of Django and of subprocesses)."""
    global _sandboxed_loader
    with _registries_lock:
        _sandboxed_loader = make_loader
        for key in [k for k in _registries if not k[1]]:
            del _registries[key]
        for key in [k for k in _by_name if not k[1]]:
            del _by_name[key]


def get_registry(root: Path | str | None = None, *, in_process: bool = False) -> TaskRegistry:
    """The registry of `root` (default: settings.STUDIO_TASKS_DIR).

    Studio's web and worker processes never import task files themselves: unless `in_process`
    (the CLI, `manage.py task`), the loader given to `use_sandboxed_discovery` does."""
    if root is None:
        from django.conf import settings

        root = settings.STUDIO_TASKS_DIR
    registry = _by_name.get((root, in_process))
    if registry is not None:
        return registry
    resolved = Path(root).resolve()
    with _registries_lock:
        registry = _registries.get((resolved, in_process))
        if registry is None:
            loader = None if in_process or _sandboxed_loader is None else _sandboxed_loader()
            registry = _registries[(resolved, in_process)] = TaskRegistry(resolved, loader)
        if len(_by_name) >= _BY_NAME_MAX:
            _by_name.clear()
        _by_name[(root, in_process)] = registry
        return registry


def discover(
    root: Path | None = None, *, in_process: bool = False, max_age: float = 0.0
) -> Discovery:
    """The tasks under `root` (see TaskRegistry.discover for `max_age`)."""
    return get_registry(root, in_process=in_process).discover(max_age)
