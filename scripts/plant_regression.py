"""Plant a metadata-porting regression in a cell env's installed pass, or take it out again.

The gate's promise is that a regression in the pass under test turns every test it
breaks red in every cell, expectations or not. This plants the regression a careless
refactor would make: ``quantization_tag`` drops out of ``_METADATA_TO_PORT`` (only
``stack_trace`` is still ported), in torch.ao's or torchao's ``port_metadata_pass.py``.

Env files are hardlinks into uv's shared cache, so the file is *replaced* (a new inode),
never edited in place: the cache and every other env keep the real pass.

    python scripts/plant_regression.py .envs/torch2.2.2-torch.ao-py3.11
    python scripts/plant_regression.py .envs/torch2.2.2-torch.ao-py3.11 --undo
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


def passes(env: Path) -> list[Path]:
    return [
        p
        for site in env.glob("lib/python*/site-packages")
        for rel in PASSES
        if (p := site / rel).is_file()
    ]


def plant(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    planted, count = _TAG.subn(r"\1", text, count=1)
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
    args = parser.parse_args(argv)
    found = passes(args.env)
    if not found:
        print(f"{args.env}: no port_metadata_pass.py in this env", file=sys.stderr)
        return 2
    for path in found:
        done = undo(path) if args.undo else plant(path)
        verb = (
            ("restored" if done else "was not planted")
            if args.undo
            else ("planted (quantization_tag no longer ported)" if done else "already planted")
        )
        print(f"{path}: {verb}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
