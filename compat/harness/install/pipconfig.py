"""pip's index configuration, translated into uv arguments.

uv reads neither pip's config files nor ``PIP_*`` variables, so a machine whose pip is
pointed at a wheelhouse or a mirror would silently go to the default index instead.
We ask pip itself (``pip config list`` merges files and environment the way pip does)
and pass the index settings on. pip's ``constraint`` is deliberately not passed: a
matrix pins exact versions, and a machine-wide cap would make cells unresolvable.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PipIndexConfig", "parse_pip_config_list", "read_pip_config"]

# Later sections override earlier ones, as in pip (``:env:`` is PIP_* variables).
_SECTIONS = ("global", "install", ":env:")


@dataclass(frozen=True)
class PipIndexConfig:
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False

    def uv_args(self, *, best_match: bool = True) -> list[str]:
        """uv flags with pip's meaning: every index is searched for the best version.

        ``best_match=False`` keeps uv's first-index rule, for a channel whose own index
        must win (an RC carries its final version number, as the release does).
        """
        args: list[str] = []
        if self.no_index:
            args.append("--no-index")
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        if best_match and (self.extra_index_urls or self.find_links):
            # pip merges all sources; uv's default stops at the first index that has the name.
            args += ["--index-strategy", "unsafe-best-match"]
        return args


def _split(value: str) -> tuple[str, ...]:
    return tuple(part for part in value.split() if part)


def parse_pip_config_list(text: str) -> PipIndexConfig:
    """Parse ``pip config list`` output (``section.key='value'`` lines)."""
    merged: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        name, sep, raw = line.partition("=")
        if not sep or "." not in name:
            continue
        section, _, key = name.rpartition(".")
        try:
            value = " ".join(shlex.split(raw))
        except ValueError:
            value = raw.strip("'\"")
        merged.setdefault(key, {})[section] = value
    def pick(key: str) -> str | None:
        values = merged.get(key, {})
        return next((values[s] for s in reversed(_SECTIONS) if s in values), None)

    no_index = (pick("no-index") or "").lower() in {"1", "true", "yes", "on"}
    return PipIndexConfig(
        index_url=pick("index-url"),
        extra_index_urls=_split(pick("extra-index-url") or ""),
        find_links=_split(pick("find-links") or ""),
        no_index=no_index,
    )


def _pip_commands() -> list[list[str]]:
    """pip of this interpreter, else of the one it was made from.

    A venv made by uv (nox's uv backend, for one) has no pip, yet pip's configuration
    lives in files and ``PIP_*`` variables it shares with its base interpreter.
    """
    interpreters = [sys.executable]
    base = getattr(sys, "_base_executable", "")
    if base and sys.prefix != sys.base_prefix:  # a venv's python may be a symlink to its base
        interpreters.append(base)
    return [[python, "-m", "pip", "config", "list"] for python in interpreters]


def read_pip_config(env: Mapping[str, str] | None = None) -> PipIndexConfig:
    """Ask the host's pip; no pip (or a broken one) means no extra configuration."""
    for command in _pip_commands():
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                  env=dict(env or os.environ), check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0:
            return parse_pip_config_list(proc.stdout)
    return PipIndexConfig()
