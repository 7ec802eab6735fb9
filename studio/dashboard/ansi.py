"""ANSI colour codes in log lines: rendered as escaped HTML with classes, or stripped.

Tasks print through pytest, rich and click, which colour their output with SGR sequences
(ESC [ ... m). The log shows the colours; the raw log and the download get plain text. Other
control sequences (cursor moves, OSC titles and links) are dropped either way.
"""

from __future__ import annotations

import re
from html import escape

# CSI sequences (ESC [ params final) and OSC sequences (ESC ] ... BEL or ESC \), plus stray ESCs.
_ANSI = re.compile(r"\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?")

_NAMES = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")


def strip_ansi(text: str) -> str:
    """The text without any escape sequence."""
    return _ANSI.sub("", text) if "\x1b" in text else text


class _Style:
    __slots__ = ("fg", "bg", "bold", "dim", "italic", "underline")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.fg = self.bg = None
        self.bold = self.dim = self.italic = self.underline = False

    def classes(self) -> str:
        names = []
        if self.fg:
            names.append(f"ansi-{self.fg}")
        if self.bg:
            names.append(f"ansi-bg-{self.bg}")
        for flag in ("bold", "dim", "italic", "underline"):
            if getattr(self, flag):
                names.append(f"ansi-{flag}")
        return " ".join(names)

    def apply(self, params: str) -> None:
        codes = [int(p) if p.isdigit() else 0 for p in params.replace(":", ";").split(";")]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code == 0:
                self.reset()
            elif code == 1:
                self.bold = True
            elif code == 2:
                self.dim = True
            elif code == 3:
                self.italic = True
            elif code == 4:
                self.underline = True
            elif code == 22:
                self.bold = self.dim = False
            elif code == 23:
                self.italic = False
            elif code == 24:
                self.underline = False
            elif 30 <= code <= 37:
                self.fg = _NAMES[code - 30]
            elif 90 <= code <= 97:
                self.fg = "bright-" + _NAMES[code - 90]
            elif code == 39:
                self.fg = None
            elif 40 <= code <= 47:
                self.bg = _NAMES[code - 40]
            elif 100 <= code <= 107:
                self.bg = "bright-" + _NAMES[code - 100]
            elif code == 49:
                self.bg = None
            elif code in (38, 48) and i + 1 < len(codes):
                # 256-colour (5;n) and true colour (2;r;g;b): the 16 basic ones map to classes,
                # the rest fall back to the default colour (a class per colour would be absurd).
                if codes[i + 1] == 5 and i + 2 < len(codes):
                    n = codes[i + 2]
                    name = None
                    if n < 8:
                        name = _NAMES[n]
                    elif n < 16:
                        name = "bright-" + _NAMES[n - 8]
                    if code == 38:
                        self.fg = name
                    else:
                        self.bg = name
                    i += 2
                elif codes[i + 1] == 2:
                    i += 4
            i += 1


def _marked(text: str, highlight: str) -> str:
    """Escaped text with every (case-insensitive) occurrence of `highlight` in <mark>."""
    if not highlight:
        return escape(text)
    parts = re.split(f"({re.escape(highlight)})", text, flags=re.IGNORECASE)
    return "".join(
        f"<mark>{escape(part)}</mark>" if i % 2 else escape(part) for i, part in enumerate(parts)
    )


def ansi_to_html(text: str, highlight: str = "") -> str:
    """Escaped HTML for one log line: SGR colours become <span class="ansi-...">, everything
    else an escape sequence does is dropped. Safe to mark_safe: every text part is escaped and
    class names come from a fixed vocabulary."""
    if "\x1b" not in text:
        return _marked(text, highlight)
    out = []
    style = _Style()
    pos = 0
    for match in _ANSI.finditer(text):
        chunk = text[pos : match.start()]
        if chunk:
            out.append(_wrap(_marked(chunk, highlight), style.classes()))
        if match.group(2) == "m":
            style.apply(match.group(1) or "0")
        pos = match.end()
    tail = text[pos:]
    if tail:
        out.append(_wrap(_marked(tail, highlight), style.classes()))
    return "".join(out)


def _wrap(html: str, classes: str) -> str:
    return f'<span class="{classes}">{html}</span>' if classes else html
