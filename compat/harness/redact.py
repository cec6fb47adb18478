"""Credentials never reach a log or a report: ``https://user:token@host`` -> ``https://***@host``."""

from __future__ import annotations

import re

__all__ = ["redact"]

# A scheme starts where no scheme character precedes it: without the look-behind the
# engine would retry at every letter of a long word and scan it again (quadratic).
_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.-])(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact(text: str) -> str:
    """Replace the user-info part of every URL in ``text`` (linear in its length)."""
    if "://" not in text or "@" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m['scheme']}***@", text)
