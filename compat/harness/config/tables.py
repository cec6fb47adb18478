"""A TOML table read key by key: every error names file and key, leftovers are errors.

The matrix loader reads each table through :class:`Table`; what it never asks for is an
unknown key, reported with the nearest known one (``pyhton`` -> ``python``).
"""

from __future__ import annotations

import difflib
import math
import re
import reprlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from compat.harness.errors import ConfigError
from compat.harness.redact import redact

__all__ = [
    "MAX_SECONDS",
    "MAX_STRING",
    "Table",
    "count",
    "env_table",
    "missing",
    "optional_int",
    "show",
]


class Table:
    """One table of the file, with the dotted key that leads to it."""

    def __init__(self, path: Path, key: str, data: object) -> None:
        self.path, self.key = path, key
        if not isinstance(data, dict):
            raise ConfigError(path, key, f"expected a table, got {show(data)}")
        self.data: dict[str, Any] = dict(data)
        self.seen: set[str] = set()

    def _key(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.path, self._key(name), message)

    def raw(self, name: str) -> object:
        self.seen.add(name)
        return self.data.get(name)

    def string(self, name: str, default: str | None = None, *, choices: Iterable[str] = ()) -> Any:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"expected a non-empty string, got {show(value)}")
        if "\x00" in value or len(value) > MAX_STRING:
            raise self.error(
                name,
                f"expected a string without NUL of at most {MAX_STRING} "
                f"characters, got {show(value)}",
            )
        options = tuple(choices)
        if options and value not in options:
            raise self.error(name, f"{show(value)} is not one of {', '.join(options)}")
        return value

    def strings(
        self, name: str, default: Iterable[str] = (), *, nonempty: bool = False
    ) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return tuple(default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(
            isinstance(v, str) and v and "\x00" not in v and len(v) <= MAX_STRING for v in value
        ):
            raise self.error(name, f"expected a list of strings, got {show(value)}")
        if nonempty and not value:
            raise self.error(name, "expected at least one value, got []")
        return tuple(value)

    def number(self, name: str, default: float) -> float:
        """Seconds: a finite positive number, at most a week (``inf`` and ``nan`` are not)."""
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise self.error(name, f"expected a positive number of seconds, got {show(value)}")
        if not math.isfinite(value) or value > MAX_SECONDS:
            raise self.error(
                name,
                f"expected a positive number of seconds, got {show(value)} "
                f"(at most {MAX_SECONDS}, a week)",
            )
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {show(value)}")
        return value

    def tables(self, name: str) -> list[Table]:
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(name, f"expected an array of tables ([[{name}]]), got {show(value)}")
        return [Table(self.path, f"{self._key(name)}[{i}]", v) for i, v in enumerate(value)]

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            name = redact(unknown[0])[:100]  # redacted before it is cut
            close = difflib.get_close_matches(name, sorted(self.seen), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.error(name, f"unknown key{hint}")


MAX_STRING = 4096  # characters in any string of the file (a URL, a regex, a reason)
MAX_SECONDS = 7 * 24 * 3600
MAX_COUNT = 1000

_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 3, 200, 200
_SHOW.maxlist = _SHOW.maxdict = _SHOW.maxtuple = 6


def show(value: object) -> str:
    """A value as an error names it: bounded however big or deep it is, redacted before
    it is cut (a cut URL would keep its password and lose what marks it as a URL)."""
    text = redact(_SHOW.repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def optional_int(table: Table, name: str, limit: int = 2**30) -> int | None:
    value = table.raw(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise table.error(name, f"expected a positive whole number, got {show(value)}")
    if value > limit:
        raise table.error(
            name, f"expected a positive whole number, got {show(value)} (at most {limit})"
        )
    return value


def count(table: Table, name: str, default: int = 0, limit: int = MAX_COUNT) -> int:
    value = table.raw(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise table.error(name, f"expected a whole number >= 0, got {show(value)}")
    if value > limit:
        raise table.error(
            name, f"expected a whole number >= 0, got {show(value)} (at most {limit})"
        )
    return value


def env_table(table: Table) -> dict[str, str]:
    """Extra environment variables for every cell's test process (strings only)."""
    value = table.raw("env")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise table.error("env", f"expected a table of strings, got {show(value)}")
    for key, item in value.items():
        if (
            not isinstance(item, str)
            or "\x00" in item
            or len(item) > MAX_STRING
            or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", key)
        ):
            raise table.error(
                f"env.{redact(key)[:100]}", f'expected NAME = "string", got {show(item)}'
            )
    return dict(value)


def missing(table: Table, name: str) -> Any:
    raise table.error(name, "is required")
