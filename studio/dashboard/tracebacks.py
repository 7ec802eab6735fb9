"""A run's Python traceback, made readable: the exception as the headline, the task's own
frames in view, Studio's frames folded away, and the internal module name of a task file
(`studio_tasks.<id>_<hash>`) replaced by the task's id."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

# runs.definitions imports a task file as `studio_tasks.<id with _>_<8 hex>`.
_TASK_MODULE = re.compile(r"\bstudio_tasks\.(\w+?)_[0-9a-f]{8}\b")
_FRAME = re.compile(r'^  File "(?P<path>[^"]+)", line \d+')
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.-]*)(?::\s?(?P<message>.*))?$")


@dataclass
class Frame:
    path: str  # as shown: relative to the project when inside it
    lines: list[str]
    studio: bool  # Studio's own code (runs/, studio/) or a library, not the task


@dataclass
class Block:
    """Consecutive lines of one kind: frames (studio or not), or plain text lines."""

    kind: str  # "text" | "frames" | "studio"
    lines: list[str] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)


@dataclass
class Traceback:
    exception_type: str
    message: str
    blocks: list[Block]

    @property
    def headline(self) -> str:
        if not self.exception_type:
            return self.message
        return f"{self.exception_type}: {self.message}" if self.message else self.exception_type


def _task_names(text: str, task_id: str | None) -> str:
    def name(match: re.Match) -> str:
        return task_id or match.group(1).replace("_", "-")

    return _TASK_MODULE.sub(name, text)


def _is_studio(path: str) -> bool:
    """Studio's own code, the standard library or a package: anything but the project's files."""
    resolved = Path(path).resolve()
    if resolved.is_relative_to(Path(settings.STUDIO_TASKS_DIR)):
        return False
    try:
        relative = resolved.relative_to(Path(settings.BASE_DIR))
    except ValueError:
        return True
    return relative.parts[:1] in (("runs",), ("studio",), (".venv",))


def _shown_path(path: str) -> str:
    """Paths of task files relative to the tasks folder's parent ("tasks/sync.py")."""
    resolved = Path(path).resolve()
    for root in (Path(settings.STUDIO_TASKS_DIR).parent, Path(settings.BASE_DIR)):
        if resolved.is_relative_to(root):
            return str(resolved.relative_to(root))
    return path


def parse(detail: str, message: str = "", task_id: str | None = None) -> Traceback | None:
    """Parse `detail` if it is a Python traceback; None otherwise (shown as plain text)."""
    if not detail or "Traceback (most recent call last):" not in detail:
        return None
    lines = _task_names(detail.rstrip("\n"), task_id).splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        match = _FRAME.match(line)
        if match:
            frame_lines = [line.replace(match.group("path"), _shown_path(match.group("path")))]
            i += 1
            while i < len(lines) and lines[i].startswith("    "):
                frame_lines.append(lines[i])
                i += 1
            studio = _is_studio(match.group("path"))
            frame = Frame(_shown_path(match.group("path")), frame_lines, studio)
            kind = "studio" if studio else "frames"
            if not blocks or blocks[-1].kind != kind:
                blocks.append(Block(kind))
            blocks[-1].frames.append(frame)
            continue
        if not blocks or blocks[-1].kind != "text":
            blocks.append(Block("text"))
        blocks[-1].lines.append(line)
        i += 1
    last = next((ln for ln in reversed(lines) if ln.strip()), "")
    exc = _EXCEPTION.match(last)
    if exc:
        exception_type = exc.group("type").rsplit(".", 1)[-1]
        text = exc.group("message") or ""
    else:
        exception_type, text = "", _task_names(message, task_id)
    return Traceback(exception_type, text or _task_names(message, task_id), blocks)
