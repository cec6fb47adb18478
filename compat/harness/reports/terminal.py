"""What a terminal gets that a pipe or a log does not: colour and lines wrapped to its width.

Colour follows the NO_COLOR convention (no-color.org: set and not empty, no colour) and
FORCE_COLOR (set and not empty: colour even in a pipe, for CI logs that render it);
otherwise a terminal that is not ``TERM=dumb`` gets colour and a pipe does not. Wrapping
is at word boundaries (``textwrap``), never inside a word, and only in a terminal: a log
keeps whole lines for grep.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Mapping
from typing import TextIO

__all__ = ["ANSI", "colour", "is_terminal", "use_colour", "visible_len", "wrap"]

ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RESET = "\x1b[0m"
_CODES = {"green": "32", "red": "1;31", "yellow": "33", "magenta": "35", "cyan": "36", "dim": "2"}


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def use_colour(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour for ``stream``: never under NO_COLOR, always under FORCE_COLOR, else in a
    terminal that is not ``TERM=dumb``."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    return is_terminal(stream) and env.get("TERM") != "dumb"


def colour(text: str, name: str | None) -> str:
    """``text`` in the colour ``name`` (None: as it is)."""
    if not name or not text:
        return text
    return f"\x1b[{_CODES[name]}m{text}{_RESET}"


def visible_len(text: str) -> int:
    """The width ``text`` takes on a terminal (its colour codes take none)."""
    return len(ANSI.sub("", text))


def wrap(line: str, width: int | None) -> list[str]:
    """``line`` wrapped at word boundaries to ``width`` (None: as it is), its continuation
    lines indented two more than its own indent."""
    if width is None or len(line) <= width:
        return [line]
    indent = line[: len(line) - len(line.lstrip())]
    return textwrap.wrap(
        line.strip(),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + "    ",
        break_long_words=False,
        break_on_hyphens=False,
    ) or [line]
