"""Version facts of the torch / torchao at hand, parsed without ``packaging``.

Cells may lack ``packaging``; a three-int tuple is all the shims need to pick a route.
"""

from __future__ import annotations

import importlib
import re
from typing import Optional, Tuple

Version = Tuple[int, int, int]


def parse_version(text: str) -> Version:
    """``"2.13.0+cpu"`` -> ``(2, 13, 0)``; missing or odd parts count as 0."""
    parts = re.findall(r"\d+", str(text).split("+")[0])[:3]
    nums = [int(p) for p in parts] + [0] * (3 - len(parts))
    return (nums[0], nums[1], nums[2])


def torch_version() -> Version:
    """The running torch's version as ``(major, minor, patch)``."""
    import torch

    return parse_version(torch.__version__)


def torch_at_least(text: str) -> bool:
    """True when the running torch is at least ``text`` (release part only)."""
    return torch_version() >= parse_version(text)


def torchao_version_string() -> Optional[str]:
    """torchao's ``__version__`` if torchao is importable, else ``None``."""
    try:
        mod = importlib.import_module("torchao")
    except Exception:  # noqa: BLE001 - any import failure means "not usable here"
        return None
    return str(getattr(mod, "__version__", "unknown"))
