"""Plant a metadata regression in a cell env's installed pt2e code, or take it out again.

The gate's promise is that a regression in the pass under test turns every test it
breaks red in every cell, expectations or not. This plants the regression a careless
refactor would make: ``quantization_tag`` drops out of ``_METADATA_TO_PORT`` (only
``stack_trace`` is still ported), in torch.ao's or torchao's ``port_metadata_pass.py``.

``--variant numeric-debug-handle`` plants another one: ``prepare.py`` no longer copies a
node's numeric debug handle onto its output observer, so the observer (and the dequantize
node convert puts in its place) carries none. In torch.ao (2.5 - 2.10) the handle is the
stored ``meta["custom"]`` key; in torchao (0.11+) it is the node's ``from_node`` chain
(pytorch/ao#2339), which the same block of torchao's ``prepare.py`` copies. Only the
numeric-debugger tests that follow a handle through prepare/convert should turn red.
Plant it in a *copy* of an env (``cp -al`` of the folder: hardlinks, and the planted file
gets a new inode), never in a shared one.

Env files are hardlinks into uv's shared cache, so the file is *replaced* (a new inode),
never edited in place: the cache and every other env keep the real pass.

    python scripts/plant_regression.py .envs/torch2.2.2-torch.ao-py3.11
    python scripts/plant_regression.py .envs/torch2.2.2-torch.ao-py3.11 --undo
    python scripts/plant_regression.py /tmp/env-copy --variant numeric-debug-handle
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

PASSES = (
    "torch/ao/quantization/pt2e/port_metadata_pass.py",
    "torchao/quantization/pt2e/quantizer/port_metadata_pass.py",
)
_TAG = re.compile(r'(_METADATA_TO_PORT = \[[^\]]*?)\s*"quantization_tag",?', re.S)

# variant -> (files it edits, pattern, replacement, what the planted code no longer does)
VARIANTS: dict[str, tuple[tuple[str, ...], re.Pattern[str], str, str]] = {
    "quantization-tag": (PASSES, _TAG, r"\1", "quantization_tag no longer ported"),
    "numeric-debug-handle": (
        ("torch/ao/quantization/pt2e/prepare.py", "torchao/quantization/pt2e/prepare.py"),
        re.compile(
            r"(# propagate numeric debug handle from original node to observer[^\n]*\n\s*)if \("
        ),
        r"\1if False and (",
        "numeric debug handle / from_node no longer copied onto observers",
    ),
}


def passes(env: Path, rels: tuple[str, ...] = PASSES) -> list[Path]:
    return [
        p
        for site in env.glob("lib/python*/site-packages")
        for rel in rels
        if (p := site / rel).is_file()
    ]


def plant(path: Path, variant: str = "quantization-tag") -> bool:
    _rels, pattern, replacement, _what = VARIANTS[variant]
    text = path.read_text(encoding="utf-8")
    planted, count = pattern.subn(replacement, text, count=1)
    if not count:
        return False
    backup = path.with_name(path.name + ".orig")
    if not backup.exists():
        shutil.copy2(path, backup)
    tmp = path.with_name(path.name + ".planted")
    tmp.write_text(planted, encoding="utf-8")
    os.replace(tmp, path)  # a new inode: the uv cache's copy is untouched
    return True


def undo(path: Path) -> bool:
    backup = path.with_name(path.name + ".orig")
    if not backup.exists():
        return False
    os.replace(backup, path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env", type=Path, help="a cell env folder (.envs/<cell id>)")
    parser.add_argument("--undo", action="store_true", help="restore the real pass")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="quantization-tag")
    args = parser.parse_args(argv)
    rels, _pattern, _replacement, what = VARIANTS[args.variant]
    found = passes(args.env, rels)
    if not found:
        print(f"{args.env}: none of {', '.join(rels)} in this env", file=sys.stderr)
        return 2
    for path in found:
        done = undo(path) if args.undo else plant(path, args.variant)
        verb = (
            ("restored" if done else "was not planted")
            if args.undo
            else (f"planted ({what})" if done else "already planted")
        )
        print(f"{path}: {verb}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
