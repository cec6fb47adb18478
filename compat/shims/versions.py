"""Version facts of the torch / torchao at hand, as the release part only.

A route depends on which features a build has, so ``2.11.0a0+git...`` and
``2.11.0.dev20261120`` count as 2.11.0 (``packaging``'s ``release``; pre-release
ordering would put them below 2.11.0). ``packaging`` is in every cell: pytest needs it.
"""

from __future__ import annotations

import importlib
from typing import Optional, Tuple

from packaging.version import InvalidVersion
from packaging.version import Version as _Pep440

Version = Tuple[int, int, int]


def parse_version(text: str) -> Version:
    """``"2.13.0+cpu"`` -> ``(2, 13, 0)``; missing parts count as 0, nonsense as 0.0.0."""
    try:
        release = _Pep440(str(text)).release
    except InvalidVersion:
        return (0, 0, 0)
    nums = list(release[:3]) + [0] * (3 - len(release[:3]))
    return (nums[0], nums[1], nums[2])


def torch_version() -> Version:
    """The running torch's version as ``(major, minor, patch)``."""
    import torch

    return parse_version(torch.__version__)


def torchao_version_string() -> Optional[str]:
    """torchao's ``__version__`` if torchao is importable, else ``None``."""
    try:
        mod = importlib.import_module("torchao")
    except Exception:  # noqa: BLE001 - any import failure means "not usable here"
        return None
    return str(getattr(mod, "__version__", "unknown"))
