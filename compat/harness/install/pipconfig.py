"""pip's index configuration, translated into uv arguments.

uv reads neither pip's config files nor ``PIP_*`` variables, so a machine whose pip is
pointed at a wheelhouse or a mirror would silently go to the default index instead.
We ask pip itself (``pip config list`` merges files and environment the way pip does)
and pass the index settings on. pip's ``constraint`` is deliberately not passed: a
matrix pins exact versions, and a machine-wide cap would make cells unresolvable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compat.harness.files import atomic_write_text, read_json_object
from compat.harness.redact import redact

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


def read_pip_config(
    env: Mapping[str, str] | None = None, *, remember: Path | None = None
) -> PipIndexConfig:
    """Ask the host's pip; no pip (or a broken one) means no extra configuration.

    Starting pip costs ~0.2 s, a tenth of a warm cell's overhead budget. With
    ``remember`` (a JSON file), pip's answer is kept there with what it depends on: a
    hash of the interpreter and of the variables that name or hold configuration, and
    every file ``pip config debug`` says it reads (present or not, with its mtime and
    size). While none of these changed, pip is not started again.

    The kept answer is state the harness reads back, so it is never redacted, and a
    secret is never written to disk: an answer holding credentials (a URL with a
    user-info part) is not kept, only that it had some, and pip is asked again.
    """
    environ = dict(env or os.environ)
    key = _config_key(environ)
    if remember is not None:
        kept = read_json_object(remember)
        if kept.get("key") == key and kept.get("files") == _file_states(kept.get("files")):
            config = _config_from_dict(kept.get("config"))
            if config is not None:
                return config
    for command in _pip_commands():
        try:
            proc = subprocess.run(
                command, capture_output=True, text=True, timeout=60, env=environ, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0:
            if remember is not None:
                _remember(remember, command, environ, key, proc.stdout)
            return parse_pip_config_list(proc.stdout)
    return PipIndexConfig()


_CONFIG_VARIABLES = ("HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS", "VIRTUAL_ENV", "APPDATA")


def _config_key(environ: Mapping[str, str]) -> str:
    """A hash of what pip's answer depends on besides its files: the variables' values may
    hold credentials (``PIP_EXTRA_INDEX_URL``), so only their hash is kept."""
    key = {
        "python": sys.executable,
        "env": {
            k: v
            for k, v in sorted(environ.items())
            if k.startswith("PIP_") or k in _CONFIG_VARIABLES
        },
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()


def _has_secret(config: PipIndexConfig) -> bool:
    urls = [config.index_url or "", *config.extra_index_urls, *config.find_links]
    return any(redact(url) != url for url in urls)


def _config_to_dict(config: PipIndexConfig) -> dict[str, Any] | None:
    """What is kept of an answer: its index settings, or nothing when they hold a secret."""
    if _has_secret(config):
        return None
    return {
        "index_url": config.index_url,
        "extra_index_urls": list(config.extra_index_urls),
        "find_links": list(config.find_links),
        "no_index": config.no_index,
    }


def _config_from_dict(data: object) -> PipIndexConfig | None:
    """A kept answer; None (ask pip) for none, a damaged one, or one that held a secret."""
    if not isinstance(data, dict):
        return None
    index_url, extra, links = (
        data.get("index_url"),
        data.get("extra_index_urls"),
        data.get("find_links"),
    )
    no_index = data.get("no_index")
    if not (
        isinstance(index_url, (str, type(None)))
        and isinstance(extra, list)
        and isinstance(links, list)
        and all(isinstance(u, str) for u in [*extra, *links])
        and isinstance(no_index, bool)
    ):
        return None
    config = PipIndexConfig(index_url, tuple(extra), tuple(links), no_index)
    return None if _has_secret(config) else config


def _file_states(files: object) -> dict[str, list[int] | None]:
    """``{path: [mtime_ns, size] or None}`` now, for the paths of a kept answer."""
    states: dict[str, list[int] | None] = {}
    for path in files if isinstance(files, dict) else {}:
        try:
            stat = Path(path).stat()
        except OSError:
            states[path] = None
        else:
            states[path] = [stat.st_mtime_ns, stat.st_size]
    return states


def _remember(
    path: Path, command: list[str], environ: Mapping[str, str], key: str, listed: str
) -> None:
    """Keep pip's answer with the files ``pip config debug`` names; if it names none
    (an old pip), keep nothing: pip is asked every time, as before. An answer with a
    secret keeps only its key (``config`` null): pip is asked again next time."""
    debug = [*command[:-1], "debug"]
    try:
        proc = subprocess.run(
            debug, capture_output=True, text=True, timeout=60, env=dict(environ), check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return
    files = re.findall(r"^\s+(\S.*?), exists: (?:True|False)$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or not files:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "key": key,
            "config": _config_to_dict(parse_pip_config_list(listed)),
            "files": _file_states(dict.fromkeys(files)),
        }
        atomic_write_text(path, json.dumps(document))
