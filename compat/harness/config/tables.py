"""A TOML table read key by key: every error names file and key, leftovers are errors.

The matrix loader reads each table through :class:`Table`; what it never asks for is an
unknown key, reported with the nearest known one (``pyhton`` -> ``python``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from compat.harness.errors import ConfigError

__all__ = ["Table", "count", "env_table", "missing", "optional_int", "show"]


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
        options = tuple(choices)
        if options and value not in options:
            raise self.error(name, f"{value!r} is not one of {', '.join(options)}")
        return value

    def strings(self, name: str, default: Iterable[str] = ()) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return tuple(default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(name, f"expected a list of strings, got {show(value)}")
        return tuple(value)

    def number(self, name: str, default: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.error(name, f"expected a positive number of seconds, got {show(value)}")
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
            name = unknown[0]
            close = difflib.get_close_matches(name, sorted(self.seen), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.error(name, f"unknown key{hint}")


def show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def optional_int(table: Table, name: str) -> int | None:
    value = table.raw(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise table.error(name, f"expected a positive whole number, got {show(value)}")
    return value


def count(table: Table, name: str, default: int = 0) -> int:
    value = table.raw(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise table.error(name, f"expected a whole number >= 0, got {show(value)}")
    return value


def env_table(table: Table) -> dict[str, str]:
    """Extra environment variables for every cell's test process (strings only)."""
    value = table.raw("env")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise table.error("env", f"expected a table of strings, got {show(value)}")
    for key, item in value.items():
        if not isinstance(item, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise table.error(f"env.{key}", f"expected NAME = \"string\", got {show(item)}")
    return dict(value)


def missing(table: Table, name: str) -> Any:
    raise table.error(name, "is required")
