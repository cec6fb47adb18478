"""Credentials never reach a log or a report: ``https://user:token@host`` -> ``https://***@host``."""

from __future__ import annotations

import re

__all__ = ["redact"]

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact(text: str) -> str:
    """Replace the user-info part of every URL in ``text``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}***@", text)
